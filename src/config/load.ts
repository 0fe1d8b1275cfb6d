import * as v from "valibot";
import { UsageError } from "../core/errors.ts";
import { type FieldName, fieldName } from "./field-names.ts";
import { configSchema } from "./schema.ts";

type Variables = v.InferOutput<typeof configSchema>;
type Variable = keyof Variables & `RELAY_${string}`;

/** Lists are read-only once read. */
type Settled<T> = T extends readonly (infer Item)[] ? readonly Item[] : T;

/** Each variable under its field name (RELAY_MAX_RECIPIENTS is maxRecipients), typed as the schema reads it. */
type Fields = { readonly [K in Variable as FieldName<K>]: Settled<Variables[K]> };

/** The values that default to other values: each written here once. */
function withDerivedDefaults(fields: Fields, systemHostname: string) {
  const hostname = fields.hostname ?? systemHostname;
  return {
    ...fields,
    dbUrl: fields.dbUrl ?? `file:${fields.dataDir.replace(/\/$/, "")}/relay.db`,
    hostname,
    nodeId: fields.nodeId ?? systemHostname,
    tlsrptOrganization: fields.tlsrptOrganization ?? hostname,
    tlsrptContact: fields.tlsrptContact ?? `postmaster@${hostname}`,
  } as const;
}

/** The validated configuration: every RELAY_* variable of the schema, by field name, defaults applied. */
export type Config = ReturnType<typeof withDerivedDefaults>;

/**
 * Validate the environment. Every invalid variable is reported, one per line,
 * naming the variable and the form it expects; the caller exits with status 2.
 */
export function loadConfig(env: Record<string, string | undefined>, systemHostname: string): Config {
  const relevant = Object.fromEntries(
    Object.entries(env).filter(([k, value]) => k.startsWith("RELAY_") && value !== undefined && value !== ""),
  );
  const result = v.safeParse(configSchema, relevant, { abortEarly: false });
  const problems = result.success
    ? []
    : result.issues.map((issue) => `${v.getDotPath(issue) ?? "configuration"}: ${issue.message}`);
  if (("RELAY_TLS_CERT_FILE" in relevant) !== ("RELAY_TLS_KEY_FILE" in relevant)) {
    problems.push("RELAY_TLS_CERT_FILE, RELAY_TLS_KEY_FILE: expected both or neither to be set");
  }
  const tokenInvalid = problems.some((p) => p.startsWith("RELAY_SHARED_DB_TOKEN"));
  if ("RELAY_SHARED_DB_TOKEN" in relevant && !("RELAY_SHARED_DB_URL" in relevant) && !tokenInvalid) {
    problems.push("RELAY_SHARED_DB_TOKEN: set without RELAY_SHARED_DB_URL, the server it is for");
  }
  if (relevant.RELAY_DURABILITY === "replicated" && !("RELAY_SHARED_DB_URL" in relevant)) {
    problems.push(
      "RELAY_DURABILITY: replicated needs RELAY_SHARED_DB_URL, the fleet's shared server that holds the copies",
    );
  }
  if (!result.success || problems.length > 0) throw new UsageError(problems);
  const variables = result.output as Readonly<Record<Variable, unknown>>;
  const fields = Object.fromEntries(
    (Object.keys(configSchema.entries) as Variable[]).map((variable) => [fieldName(variable), variables[variable]]),
  ) as Fields;
  return withDerivedDefaults(fields, systemHostname);
}
