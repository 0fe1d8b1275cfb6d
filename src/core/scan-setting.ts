import { UsageError } from "./errors.ts";

/**
 * A user's or API key's content scanning setting (issue 18): true scans its
 * mail whatever RELAY_MILTER_SCOPE says, false never scans it, null follows
 * the scope. Outside the code it is `--scan on|off`, and `scope` when unset.
 */
export type ScanSetting = boolean | null;

/** `--scan on` or `--scan off`, blanks and case ignored; throws UsageError quoting anything else. */
export function scanOption(text: string): boolean {
  const value = text.trim().toLowerCase();
  if (value === "on") return true;
  if (value === "off") return false;
  throw new UsageError([`scan ${JSON.stringify(text)} is not valid: expected on or off`]);
}

/** The setting as the CLI shows it: on, off, or scope (RELAY_MILTER_SCOPE decides). */
export function scanLabel(scan: ScanSetting): string {
  return scan === null ? "scope" : scan ? "on" : "off";
}
