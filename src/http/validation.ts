import * as v from "valibot";
import type { FieldError } from "./problem.ts";

export function fieldErrors(issues: readonly v.BaseIssue<unknown>[]): FieldError[] {
  return issues.map((issue) => ({ field: v.getDotPath(issue) ?? "(body)", message: issue.message }));
}
