/**
 * The MTA-STS policy file (RFC 8461 3.2) and MX host matching (RFC 8461 4.1).
 *
 *   sts-policy-record      = sts-policy-field *WSP *(sts-policy-term-delim sts-policy-field *WSP) [sts-policy-term-delim]
 *   sts-policy-field       = version / mode / max-age / mx / extension, each  name ":" *WSP value
 *   sts-policy-term-delim  = CRLF / LF
 *   version = %s"STSv1"; mode = %s"testing" / %s"enforce" / %s"none";
 *   mx      = ["*."] Domain; max_age = 1*10(DIGIT), at most 31557600
 */

import { trimWsp } from "../../core/wsp.ts";

export type PolicyMode = "enforce" | "testing" | "none";

export interface Policy {
  readonly version: "STSv1";
  readonly mode: PolicyMode;
  /** MX patterns, lower-case, without a trailing dot: "mx.example.com" or "*.example.com". */
  readonly mx: readonly string[];
  /** Seconds a sender may cache the policy after fetching it (RFC 8461 3.2). */
  readonly maxAge: number;
}

export type PolicyResult = { readonly ok: true; readonly policy: Policy } | {
  readonly ok: false;
  readonly reason: string;
};

/** RFC 8461 3.2: "This value MUST be less than or equal to 31557600 (approximately 1 year)." */
export const MAX_MAX_AGE = 31_557_600;

const FIELD_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;
/** sts-policy-ext-value: visible characters (UTF-8 allowed) with inner spaces. */
const FIELD_VALUE = /^[^\x00-\x20\x7f](?:[^\x00-\x1f\x7f]*[^\x00-\x20\x7f])?$/u;
const MODES: readonly PolicyMode[] = ["enforce", "testing", "none"];
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * Parses a policy body strictly: field names and the version and mode values
 * are case-sensitive (%s in the ABNF), lines end in CRLF or LF, unknown
 * fields are ignored (RFC 8461 3.2), and a missing or repeated version, mode
 * or max_age makes the policy invalid. mx is required unless the mode is
 * "none" ("required if mode is not 'none'", RFC 8461 3.2).
 *
 * Blank lines are skipped rather than rejected: an invalid policy means "no
 * policy" (RFC 8461 3.3), so strictness there would only weaken security.
 */
export function parsePolicy(text: string): PolicyResult {
  let version: string | undefined;
  let mode: PolicyMode | undefined;
  let maxAge: number | undefined;
  const mx: string[] = [];
  const lines = text.split("\n").map((l) => (l.endsWith("\r") ? l.slice(0, -1) : l));
  for (const [index, line] of lines.entries()) {
    if (/^[ \t]*$/.test(line)) continue;
    const where = `line ${index + 1}`;
    if (line.includes("\r")) return { ok: false, reason: `${where}: bare CR` };
    const colon = line.indexOf(":");
    if (colon < 0) return { ok: false, reason: `${where}: "${line}" is not "name: value"` };
    const name = line.slice(0, colon);
    const value = trimWsp(line.slice(colon + 1));
    if (!FIELD_NAME.test(name)) return { ok: false, reason: `${where}: bad field name "${name}"` };
    if (!FIELD_VALUE.test(value)) return { ok: false, reason: `${where}: bad value for "${name}": "${value}"` };
    const repeated = (
      seen: unknown,
    ) => (seen !== undefined ? { ok: false as const, reason: `${where}: "${name}" given more than once` } : undefined);
    switch (name) {
      case "version": {
        const dup = repeated(version);
        if (dup) return dup;
        if (value !== "STSv1") return { ok: false, reason: `${where}: version "${value}" is not "STSv1"` };
        version = value;
        break;
      }
      case "mode": {
        const dup = repeated(mode);
        if (dup) return dup;
        if (!MODES.includes(value as PolicyMode)) {
          return { ok: false, reason: `${where}: mode "${value}" is not enforce, testing or none` };
        }
        mode = value as PolicyMode;
        break;
      }
      case "max_age": {
        const dup = repeated(maxAge);
        if (dup) return dup;
        if (!/^[0-9]{1,10}$/.test(value)) {
          return { ok: false, reason: `${where}: max_age "${value}" is not 1-10 digits` };
        }
        const seconds = Number(value);
        if (seconds > MAX_MAX_AGE) {
          return { ok: false, reason: `${where}: max_age ${seconds} exceeds ${MAX_MAX_AGE} (RFC 8461 3.2)` };
        }
        maxAge = seconds;
        break;
      }
      case "mx": {
        const pattern = normalizePattern(value);
        if (pattern === undefined) {
          return { ok: false, reason: `${where}: mx "${value}" is not a domain or "*." and a domain` };
        }
        if (!mx.includes(pattern)) mx.push(pattern);
        break;
      }
      default:
        break; // RFC 8461 3.2: unknown fields MUST be ignored
    }
  }
  if (version === undefined) return { ok: false, reason: "version is missing" };
  if (mode === undefined) return { ok: false, reason: "mode is missing" };
  if (maxAge === undefined) return { ok: false, reason: "max_age is missing" };
  if (mode !== "none" && mx.length === 0) return { ok: false, reason: `mode ${mode} needs at least one mx` };
  return { ok: true, policy: { version: "STSv1", mode, mx, maxAge } };
}

/** `["*."] Domain` (RFC 8461 3.2, Domain per RFC 5321 4.1.2), lower-cased, a trailing dot dropped. */
function normalizePattern(value: string): string | undefined {
  const lower = value.toLowerCase().replace(/\.$/, "");
  const domain = lower.startsWith("*.") ? lower.slice(2) : lower;
  if (domain.length === 0 || domain.length > 253) return undefined;
  return domain.split(".").every((label) => LABEL.test(label)) ? lower : undefined;
}

/** Lower-case, without a trailing dot. */
export function normalizeHost(host: string): string {
  return host.toLowerCase().replace(/\.$/, "");
}

/**
 * RFC 8461 4.1: an MX host matches a pattern when it equals the pattern, or
 * when the pattern is "*.example.com" and the host has exactly one more label
 * on the left ("mail.example.com", not "a.mail.example.com" nor "example.com").
 * Case-insensitive; a trailing dot on either side is ignored.
 */
export function mxMatches(policy: Pick<Policy, "mx">, hostname: string): boolean {
  const host = normalizeHost(hostname);
  if (host.length === 0) return false;
  return policy.mx.some((raw) => {
    const pattern = normalizeHost(raw);
    if (!pattern.startsWith("*.")) return host === pattern;
    const dot = host.indexOf(".");
    return dot > 0 && host.slice(dot + 1) === pattern.slice(2);
  });
}
