import { readFileSync } from "node:fs";
import { UsageError } from "../core/errors.ts";

/**
 * Read KEY=VALUE lines (# comments, optional quotes). Values already in the
 * environment win, as with every dotenv loader: the file holds defaults.
 */
export function readEnvFile(path: string): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new UsageError([`--env-file: cannot read ${JSON.stringify(path)}: ${(error as Error).message}`]);
  }
  const out: Record<string, string> = {};
  const problems: string[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    const trimmed = line.trim();
    if (trimmed === "" || trimmed.startsWith("#")) return;
    const match = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(trimmed);
    if (!match) {
      problems.push(`--env-file ${path}:${i + 1}: expected KEY=VALUE, got ${JSON.stringify(trimmed)}`);
      return;
    }
    const raw = match[2]!;
    const quoted = /^(["'])(.*)\1$/.exec(raw);
    out[match[1]!] = quoted ? quoted[2]! : raw;
  });
  if (problems.length > 0) throw new UsageError(problems);
  return out;
}
