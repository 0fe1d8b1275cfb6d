import { type Context, Hono } from "hono";
import { describeRoute, resolver, validator } from "hono-openapi";
import * as v from "valibot";
import type { DomainCheckReport } from "../auth/domain-check.ts";
import type { RecordToPublish } from "../auth/domain-records.ts";
import { DomainError, type DomainService, type DomainView } from "../auth/domains.ts";
import { UsageError } from "../core/errors.ts";
import type { DkimKeyInfo } from "../queue/domains.ts";
import type { AuthEnv } from "./auth.ts";
import { json, problemResponses } from "./openapi-helpers.ts";
import { problem } from "./problem.ts";
import { validJsonBody } from "./validation.ts";

/** What the routes need of the domain service. */
export type DomainRouteDeps = Pick<DomainService, "add" | "list" | "get" | "rotate" | "check">;

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
const nullableString = v.nullable(v.string());

const keySchema = v.pipe(
  v.object({
    selector: v.string(),
    algorithm: v.picklist(["rsa", "ed25519"]),
    state: v.pipe(
      v.picklist(["active", "pending", "retiring", "retired"]),
      v.description(
        "active signs; pending waits for its DNS record; retiring is replaced but its record is still needed until retire_after",
      ),
    ),
    created_at: v.string(),
    activated_at: nullableString,
    retire_after: nullableString,
  }),
  v.metadata({ ref: "DkimKey" }),
);

const recordSchema = v.pipe(
  v.object({
    purpose: v.picklist([
      "spf",
      "dkim",
      "dmarc",
      "return-path-mx",
      "return-path-spf",
      "mta-sts",
      "mta-sts-policy",
      "tls-rpt",
    ]),
    name: v.pipe(v.string(), v.description("owner name; for mta-sts-policy the HTTPS URL of the policy file")),
    type: v.picklist(["TXT", "MX", "HTTPS"]),
    value: v.string(),
    required: v.boolean(),
    note: v.optional(v.string()),
    selector: v.optional(v.string()),
    algorithm: v.optional(v.picklist(["rsa", "ed25519"])),
    key_state: v.optional(v.string()),
    needed_until: v.optional(v.pipe(v.string(), v.description("a retiring DKIM key's record must stay until then"))),
  }),
  v.metadata({ ref: "DnsRecordToPublish" }),
);

const checkSchema = v.pipe(
  v.object({
    checked_at: v.string(),
    ok: v.pipe(v.boolean(), v.description("every required record passes")),
    records: v.array(
      v.object({
        purpose: v.string(),
        name: v.string(),
        required: v.boolean(),
        status: v.picklist(["pass", "fail", "warn"]),
        found: v.array(v.string()),
        detail: v.string(),
        fix: v.optional(v.string()),
        selector: v.optional(v.string()),
        algorithm: v.optional(v.string()),
        key_state: v.optional(v.string()),
      }),
    ),
    verdict: v.pipe(v.array(v.string()), v.description("what a receiver would conclude, in plain words")),
  }),
  v.metadata({ ref: "DomainCheck" }),
);

const VERIFIED_TEXT =
  "when a DNS check first found an active DKIM key's record published (never cleared); null: not yet. " +
  "With RELAY_SENDER_POLICY=verified, SMTP AUTH users and API keys may send From this domain only once it is set";

const domainSummarySchema = v.pipe(
  v.object({
    domain: v.string(),
    created_at: v.string(),
    keys: v.array(keySchema),
    last_checked_at: nullableString,
    last_check_ok: v.nullable(v.boolean()),
    verified_at: v.pipe(nullableString, v.description(VERIFIED_TEXT)),
  }),
  v.metadata({ ref: "DomainSummary" }),
);

const domainSchema = v.pipe(
  v.object({
    domain: v.string(),
    created_at: v.string(),
    keys: v.array(keySchema),
    records: v.array(recordSchema),
    last_check: v.nullable(checkSchema),
    verified_at: v.pipe(nullableString, v.description(VERIFIED_TEXT)),
  }),
  v.metadata({ ref: "Domain" }),
);

const rotateSchema = v.pipe(
  v.object({ domain: v.string(), new_keys: v.array(keySchema), check: checkSchema, records: v.array(recordSchema) }),
  v.metadata({ ref: "DkimRotation" }),
);

const addDomainSchema = v.pipe(
  v.object({
    domain: v.pipe(v.string(), v.minLength(1), v.description("the sending domain, e.g. example.com")),
    selector: v.optional(v.pipe(v.string(), v.description("DKIM selector; default rsaYYYYMMDD / edYYYYMMDD"))),
    algorithm: v.optional(
      v.pipe(
        v.picklist(["rsa", "ed25519", "both"]),
        v.description("rsa (RSA-2048, default), ed25519, or both (two signatures)"),
      ),
    ),
  }),
  v.metadata({ ref: "AddDomain" }),
);

const domainParamSchema = v.object({ domain: v.pipe(v.string(), v.minLength(1), v.description("a sending domain")) });

function keyJson(k: DkimKeyInfo): v.InferOutput<typeof keySchema> {
  return {
    selector: k.selector,
    algorithm: k.algorithm,
    state: k.state,
    created_at: iso(k.createdAt)!,
    activated_at: iso(k.activatedAt),
    retire_after: iso(k.retireAfter),
  };
}

function recordJson(r: RecordToPublish): v.InferOutput<typeof recordSchema> {
  return {
    purpose: r.purpose,
    name: r.name,
    type: r.type,
    value: r.value,
    required: r.required,
    note: r.note,
    selector: r.selector,
    algorithm: r.algorithm,
    key_state: r.keyState,
    needed_until: r.neededUntil,
  };
}

function checkJson(c: DomainCheckReport): v.InferOutput<typeof checkSchema> {
  return {
    checked_at: c.checkedAt,
    ok: c.ok,
    records: c.records.map((r) => ({
      purpose: r.purpose,
      name: r.name,
      required: r.required,
      status: r.status,
      found: [...r.found],
      detail: r.detail,
      fix: r.fix,
      selector: r.selector,
      algorithm: r.algorithm,
      key_state: r.keyState,
    })),
    verdict: [...c.verdict],
  };
}

function domainJson(d: DomainView): v.InferOutput<typeof domainSchema> {
  return {
    domain: d.domain,
    created_at: iso(d.createdAt)!,
    keys: d.keys.map(keyJson),
    records: d.records.map(recordJson),
    last_check: d.lastCheck ? checkJson(d.lastCheck) : null,
    verified_at: iso(d.verifiedAt),
  };
}

function failure(c: Context, error: unknown) {
  if (error instanceof DomainError) {
    return problem(c, error.status, error.status === 404 ? "Not Found" : "Conflict", error.message);
  }
  if (error instanceof UsageError) {
    return problem(
      c,
      422,
      "Invalid domain",
      error.problems.join("; "),
      error.problems.map((message) => ({ field: "(body)", message })),
    );
  }
  throw error;
}

const tags = ["domains"];
const adminOnly = { 401: "Missing or unknown bearer token", 403: 'The token lacks the "admin" scope' };

/**
 * Sending domains: DKIM keys, the DNS records to publish, DNS checks and key
 * rotation. Never a private key in an answer.
 */
export function domainRoutes(domains: DomainRouteDeps): Hono<AuthEnv> {
  const app = new Hono<AuthEnv>();

  app.get(
    "/",
    describeRoute({
      tags,
      summary: "List sending domains",
      description: "Each domain with its DKIM keys (selector, algorithm, state) and the outcome of its last DNS check.",
      security: [{ bearer: ["admin"] }],
      responses: {
        200: json("The sending domains", v.object({ domains: v.array(domainSummarySchema) })),
        ...problemResponses(adminOnly),
      },
    }),
    async (c) => {
      const all = await domains.list();
      return c.json({
        domains: all.map((d) => ({
          domain: d.domain,
          created_at: iso(d.createdAt)!,
          keys: d.keys.map(keyJson),
          last_checked_at: d.lastCheck?.checkedAt ?? null,
          last_check_ok: d.lastCheck?.ok ?? null,
          verified_at: iso(d.verifiedAt),
        })),
      });
    },
  );

  app.post(
    "/",
    describeRoute({
      tags,
      summary: "Add a sending domain",
      description:
        "Creates its DKIM key(s) (RSA-2048 by default; Ed25519 or both on request) and answers with every DNS record to publish. " +
        "The relay signs mail whose From header is at exactly this domain (not its subdomains) from now on.",
      security: [{ bearer: ["admin"] }],
      requestBody: { required: true, content: { "application/json": { schema: resolver(addDomainSchema) } } },
      responses: {
        201: json("Added", domainSchema),
        ...problemResponses({
          ...adminOnly,
          400: "The body is not JSON",
          409: "The domain is already added",
          422: "Invalid fields",
        }),
      },
    }),
    async (c) => {
      const parsed = await validJsonBody(c, addDomainSchema, {
        title: "Invalid domain",
        example: '{"domain": "example.com"}',
      });
      if (!parsed.ok) return parsed.response;
      try {
        const view = await domains.add(parsed.output.domain, {
          selector: parsed.output.selector,
          algorithm: parsed.output.algorithm,
        });
        return c.json(domainJson(view), 201);
      } catch (error) {
        return failure(c, error);
      }
    },
  );

  app.get(
    "/:domain",
    describeRoute({
      tags,
      summary: "A sending domain",
      description:
        "Its keys, every DNS record to publish (retiring DKIM keys marked as still needed, with until when) and the last DNS check.",
      security: [{ bearer: ["admin"] }],
      responses: {
        200: json("The domain", domainSchema),
        ...problemResponses({ ...adminOnly, 404: "No such sending domain" }),
      },
    }),
    validator("param", domainParamSchema),
    async (c) => {
      try {
        const view = await domains.get(c.req.valid("param").domain);
        if (!view) {
          return problem(c, 404, "Not Found", `no sending domain ${JSON.stringify(c.req.valid("param").domain)}`);
        }
        return c.json(domainJson(view));
      } catch (error) {
        return failure(c, error);
      }
    },
  );

  app.post(
    "/:domain/check",
    describeRoute({
      tags,
      summary: "Check a domain's DNS now",
      description:
        "Looks up every record to publish, compares it with what the relay expects, and says what a receiver would conclude. " +
        "A pending DKIM key whose record is now visible starts signing.",
      security: [{ bearer: ["admin"] }],
      responses: {
        200: json("The check", checkSchema),
        ...problemResponses({ ...adminOnly, 404: "No such sending domain" }),
      },
    }),
    validator("param", domainParamSchema),
    async (c) => {
      try {
        return c.json(checkJson(await domains.check(c.req.valid("param").domain)));
      } catch (error) {
        return failure(c, error);
      }
    },
  );

  app.post(
    "/:domain/dkim/rotate",
    describeRoute({
      tags,
      summary: "Rotate the domain's DKIM keys",
      description:
        "Makes a new key (new selector) for each algorithm the domain signs with. The relay keeps signing with the current key " +
        "until the new record is visible in DNS (checked now, periodically, and by POST /v1/domains/{domain}/check); " +
        "then the old key stops signing and its record stays listed as still needed for the grace period (RELAY_DKIM_ROTATION_GRACE).",
      security: [{ bearer: ["admin"] }],
      responses: {
        200: json("The new keys and a first DNS check", rotateSchema),
        ...problemResponses({ ...adminOnly, 404: "No such sending domain" }),
      },
    }),
    validator("param", domainParamSchema),
    async (c) => {
      try {
        const domain = c.req.valid("param").domain;
        const rotation = await domains.rotate(domain);
        const view = await domains.get(domain);
        return c.json({
          domain: rotation.check.domain,
          new_keys: rotation.keys.map(keyJson),
          check: checkJson(rotation.check),
          records: (view?.records ?? []).map(recordJson),
        });
      } catch (error) {
        return failure(c, error);
      }
    },
  );

  return app;
}
