import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * What `relay version` reports. A binary has it compiled in by
 * scripts/build.ts (the global constant RELAY_BUILD); from source, main.ts
 * makes it from package.json with the target "source", and the commit is
 * asked of git (sourceCommit) only when shown.
 */
export interface BuildInfo {
  readonly version: string;
  /** The git commit built, "-dirty" appended when tracked files differed from it; null when unknown. */
  readonly commit: string | null;
  /** "linux-x64", "linux-x64-baseline", "linux-arm64", "linux-x64-musl", ... or "source". */
  readonly target: string;
  /** ISO 8601 UTC time of the build; null from source. */
  readonly buildDate: string | null;
}

export const SOURCE_TARGET = "source";

/** The commit of the checkout this source file is in (with "-dirty" as a build marks it), or null without git. */
export function sourceCommit(): string | null {
  const checkout = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
  const git = (args: string[]) =>
    execFileSync("git", ["-C", checkout, ...args], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
      timeout: 5_000,
    }).trim();
  try {
    const sha = git(["rev-parse", "HEAD"]);
    return `${sha}${git(["status", "--porcelain", "--untracked-files=no"]) === "" ? "" : "-dirty"}`;
  } catch {
    return null; // not a checkout, or no git
  }
}
