import type { Hono } from "hono";
import { generateSpecs } from "hono-openapi";
import type { OpenAPIV3_1 } from "openapi-types";

export type OpenApiDocument = OpenAPIV3_1.Document;

const DESCRIPTION =
  "The relay's HTTP API. Authenticate with `Authorization: Bearer <token>`: the admin token has every scope; " +
  "an API key has some of `send` (send and cancel messages), `read` (messages and events) and `admin` " +
  "(everything, including queue, suppressions, domains and webhooks), and may be limited to sender domains. " +
  "Errors are RFC 9457 problem details (`application/problem+json`) listing every invalid field.";

/**
 * The OpenAPI 3.1 document of `app`, generated from the routes' descriptions
 * and their valibot schemas; built once, on first use.
 */
// deno-lint-ignore no-explicit-any -- any app: the document is read from its routes, whatever their environment
export function openApiDocument(app: Hono<any>, version: string): () => Promise<OpenApiDocument> {
  let built: Promise<OpenApiDocument> | undefined;
  return () => {
    built ??= generateSpecs(app, {
      documentation: {
        openapi: "3.1.0",
        info: { title: "relay HTTP API", version, description: DESCRIPTION },
        tags: [
          { name: "messages", description: "Send, inspect and cancel messages" },
          { name: "events", description: "The durable event log" },
          { name: "domains", description: "Sending domains: DKIM keys, DNS records to publish, checks, key rotation" },
          {
            name: "shaping",
            description: "Traffic shaping: the rules outbound delivery follows per provider and domain, and IP warmup",
          },
          {
            name: "suppressions",
            description: "Addresses mail is accepted for but never sent to: hard bounces, complaints, unsubscribes",
          },
          {
            name: "trace",
            description: "SMTP session traces for one client address or one destination, switched on without a restart",
          },
          { name: "meta", description: "Health and this description" },
        ],
        components: {
          securitySchemes: {
            bearer: {
              type: "http",
              scheme: "bearer",
              description: "The admin token (every scope) or an API key (its scopes: send, read, admin)",
            },
          },
        },
        security: [{ bearer: [] }],
      },
      defaultValidationErrorResponse: false,
      excludeStaticFile: false,
    }).then(
      (doc) => doc as unknown as OpenApiDocument,
      (error) => {
        built = undefined;
        throw error;
      },
    );
    return built;
  };
}
