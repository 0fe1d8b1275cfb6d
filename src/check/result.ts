/** One line of `relay check`: what was looked at, what was found, and the fix when it is not a pass. */
export interface CheckResult {
  readonly status: "pass" | "warn" | "fail";
  /** What was checked, naming the variable or the value: "RELAY_DATA_DIR /var/lib/relay". */
  readonly what: string;
  readonly detail: string;
  /** For a warning or a failure: what to do, in a few words. */
  readonly fix?: string;
}

export const pass = (what: string, detail: string): CheckResult => ({ status: "pass", what, detail });
export const warn = (what: string, detail: string, fix: string): CheckResult => ({ status: "warn", what, detail, fix });
export const fail = (what: string, detail: string, fix: string): CheckResult => ({ status: "fail", what, detail, fix });

/** "PASS what: detail", "FAIL what: detail; fix: fix". */
export function formatResult(result: CheckResult): string {
  const fix = result.fix === undefined ? "" : `; fix: ${result.fix}`;
  return `${result.status.toUpperCase()} ${result.what}: ${result.detail}${fix}`;
}

/** The last line: how many of each. */
export function formatSummary(results: readonly CheckResult[]): string {
  const count = (status: CheckResult["status"]) => results.filter((r) => r.status === status).length;
  return `relay check: ${count("fail")} FAIL, ${count("warn")} WARN, ${count("pass")} PASS`;
}

/** A reason from an error: its code (ENOENT, EACCES) when it has one, else its message. */
export function errorReason(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string") return code;
  return error instanceof Error ? error.message : String(error);
}
