import { spawnSync } from "node:child_process";
import { repoRoot } from "./relay-process.ts";

function git(args: string[]): { ok: boolean; out: string } {
  const result = spawnSync("git", ["-C", repoRoot, ...args], { encoding: "utf8" });
  return { ok: result.status === 0, out: (result.stdout ?? "").trim() };
}

/** This checkout's HEAD commit, or undefined outside git. */
export function checkoutHead(): string | undefined {
  const head = git(["rev-parse", "HEAD"]);
  return head.ok ? head.out : undefined;
}

/**
 * Whether `commit`, as `relay version` names it (40 hex digits, "-dirty"
 * when built with uncommitted changes), is HEAD or before it in this
 * checkout: a binary built here, even before the last commit.
 */
export function isCommitOfCheckout(commit: string): boolean {
  const match = /^([0-9a-f]{40})(-dirty)?$/.exec(commit);
  return match !== null && git(["merge-base", "--is-ancestor", match[1]!, "HEAD"]).ok;
}
