import type { StandardSchemaV1 } from "@standard-schema/spec";
import type { Context } from "hono";
import * as v from "valibot";
import { type FieldError, problem } from "./problem.ts";

export function fieldErrors(issues: readonly v.BaseIssue<unknown>[]): FieldError[] {
  return once(issues.map((issue) => ({ field: v.getDotPath(issue) ?? "(body)", message: issue.message })));
}

/** Field errors from Standard Schema issues (what hono-openapi's validator hands its hook). */
export function standardFieldErrors(issues: readonly StandardSchemaV1.Issue[]): FieldError[] {
  return once(issues.map((issue) => ({
    field: (issue.path ?? []).map((segment) => String(typeof segment === "object" ? segment.key : segment)).join(".") ||
      "(query)",
    message: issue.message,
  })));
}

/**
 * Each error once: a value can fail several steps of one pipe with the same
 * message (limit=-1 is neither digits nor 1-1000), and a list that says the
 * same thing twice reads as two problems.
 */
function once(errors: readonly FieldError[]): FieldError[] {
  const seen = new Set<string>();
  return errors.filter((e) => {
    const key = `${e.field}\n${e.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

type HookResult = { success: true } | { success: false; error: readonly StandardSchemaV1.Issue[] };

/** A bad query string: 400 problem JSON naming every bad parameter. */
export function queryHook(result: HookResult, c: Context) {
  if (!result.success) return problem(c, 400, "Bad Request", "invalid query", standardFieldErrors(result.error));
}

/** A path parameter the schema refuses: 404, nothing is there. */
export function paramHook(result: HookResult, c: Context) {
  if (!result.success) {
    return problem(c, 404, "Not Found", `no route ${c.req.method} ${c.req.path}`, standardFieldErrors(result.error));
  }
}

/** `limit` of a paged list in a query string: 1-1000, 100 when absent. */
export const pageLimit = v.optional(
  v.pipe(
    v.string(),
    v.regex(/^\d+$/, "expected an integer 1-1000"),
    v.check((s) => Number(s) >= 1 && Number(s) <= 1000, "expected an integer 1-1000"),
    v.description("page size, 1-1000 (default 100)"),
  ),
  "100",
);

export type ValidBody<S extends v.GenericSchema> =
  | { readonly ok: true; readonly output: v.InferOutput<S> }
  | { readonly ok: false; readonly response: Response };

/**
 * The request's JSON body checked against `schema`: its output, or the
 * answer to give: 400 when the body is not JSON (with an example of what to
 * send), 422 naming every invalid field. `emptyAs`: what an empty body
 * stands for, where the body is optional.
 */
export async function validJsonBody<S extends v.GenericSchema>(
  c: Context,
  schema: S,
  what: { readonly title: string; readonly example: string; readonly emptyAs?: unknown },
): Promise<ValidBody<S>> {
  const text = await c.req.text();
  let body: unknown = what.emptyAs;
  if (what.emptyAs === undefined || text.trim() !== "") {
    try {
      body = JSON.parse(text);
    } catch {
      const response = problem(c, 400, "Bad Request", `the body is not valid JSON; send ${what.example}`);
      return { ok: false, response };
    }
  }
  const parsed = v.safeParse(schema, body, { abortEarly: false });
  if (parsed.success) return { ok: true, output: parsed.output };
  return {
    ok: false,
    response: problem(c, 422, what.title, "one or more fields are invalid", fieldErrors(parsed.issues)),
  };
}
