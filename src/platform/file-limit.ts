import { readFileSync } from "node:fs";

/**
 * The process's soft limit on open file descriptors (RLIMIT_NOFILE), read
 * from /proc/self/limits: neither Bun nor Deno exposes getrlimit. Undefined
 * where it cannot be read (not Linux) or is unlimited.
 */
export function openFileLimit(
  read: () => string = () => readFileSync("/proc/self/limits", "utf8"),
): number | undefined {
  let text: string;
  try {
    text = read();
  } catch {
    return undefined;
  }
  const soft = /^Max open files\s+(\S+)/m.exec(text)?.[1];
  const limit = soft === undefined ? NaN : Number(soft);
  return Number.isSafeInteger(limit) && limit > 0 ? limit : undefined;
}
