/** A failure the user caused (bad usage, bad configuration): exit status 2, message shown as is. */
export class UsageError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(problems.join("\n"));
    this.name = "UsageError";
  }
}
