import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

/**
 * Every file under `dir` (sub-directories included), one line each: its
 * path, size and SHA-256. Two equal results mean no file was made, removed
 * or changed in between; a differing line names the file.
 */
export function directoryHash(dir: string): string {
  const lines: string[] = [];
  const visit = (relative: string) => {
    for (const entry of readdirSync(join(dir, relative), { withFileTypes: true })) {
      const path = join(relative, entry.name);
      if (entry.isDirectory()) {
        lines.push(`${path}/`);
        visit(path);
        continue;
      }
      const bytes = readFileSync(join(dir, path));
      lines.push(`${path} ${bytes.length} ${createHash("sha256").update(bytes).digest("hex")}`);
    }
  };
  visit("");
  return lines.sort().join("\n");
}
