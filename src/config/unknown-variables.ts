import { configSchema } from "./schema.ts";

const KNOWN: readonly string[] = Object.keys(configSchema.entries);

export interface UnknownVariable {
  readonly name: string;
  /** The known variable it most likely meant (a typo), when one is close enough. */
  readonly closest?: string;
}

/**
 * RELAY_* variables the relay does not read: each is most likely a typo
 * (RELAY_SMTP_LISTN) that would otherwise leave a setting at its default
 * without a word.
 */
export function unknownVariables(env: Readonly<Record<string, string | undefined>>): UnknownVariable[] {
  return Object.keys(env)
    .filter((name) => name.startsWith("RELAY_") && !KNOWN.includes(name))
    .sort()
    .map((name) => {
      const closest = closestKnown(name);
      return closest ? { name, closest } : { name };
    });
}

/** The known name fewest edits away, if that is at most a third of the name's own part (after RELAY_). */
function closestKnown(name: string): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const known of KNOWN) {
    const distance = editDistance(name, known);
    if (!best || distance < best.distance) best = { name: known, distance };
  }
  const allowed = Math.max(1, Math.floor((name.length - "RELAY_".length) / 3));
  return best && best.distance <= allowed ? best.name : undefined;
}

/** Levenshtein distance: insertions, deletions and substitutions. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = row;
  }
  return previous[b.length]!;
}
