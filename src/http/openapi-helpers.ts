import { resolver } from "hono-openapi";
import type { GenericSchema } from "valibot";
import { problemSchema } from "./message-schema.ts";

/** A JSON response described by a valibot schema. */
export function json(description: string, schema: GenericSchema) {
  return { description, content: { "application/json": { schema: resolver(schema) } } };
}

/** Problem-details responses, one per status. */
export function problemResponses(statuses: Record<number, string>) {
  return Object.fromEntries(
    Object.entries(statuses).map(([status, description]) => [
      status,
      { description, content: { "application/problem+json": { schema: resolver(problemSchema) } } },
    ]),
  );
}
