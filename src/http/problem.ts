import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";

export interface FieldError {
  readonly field: string;
  /** For a document in the body (a shaping file): the line of the field. */
  readonly line?: number;
  readonly message: string;
}

/** RFC 9457 problem details; `errors` lists every invalid field, not just the first. */
export function problem(
  c: Context,
  status: ContentfulStatusCode,
  title: string,
  detail?: string,
  errors?: FieldError[],
) {
  return c.json({ type: "about:blank", title, status, detail, errors }, status, {
    "content-type": "application/problem+json",
  });
}
