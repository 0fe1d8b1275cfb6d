/**
 * A failure the user caused (bad usage, bad configuration): exit status 2,
 * each problem on its own line, then `help` (a usage text) when given.
 */
export class UsageError extends Error {
  constructor(readonly problems: readonly string[], readonly help?: string) {
    super(problems.join("\n"));
    this.name = "UsageError";
  }
}

/**
 * Run every check and report the problems of all of them at once: one
 * UsageError listing what each failing check said, after `known` problems.
 */
export function checkAll(checks: readonly (() => unknown)[], known: readonly string[] = []): void {
  const problems = [...known];
  for (const check of checks) {
    try {
      check();
    } catch (error) {
      if (!(error instanceof UsageError)) throw error;
      problems.push(...error.problems);
    }
  }
  if (problems.length > 0) throw new UsageError(problems);
}
