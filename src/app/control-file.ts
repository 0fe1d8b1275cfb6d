import { randomBytes } from "node:crypto";
import { chmodSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { isIPv6 } from "../core/address.ts";

/**
 * How commands on this machine (`relay queue ...`) reach the running node:
 * `$RELAY_DATA_DIR/control.json` holds the URL of its HTTP API and a token
 * with the admin scope, made at each start and valid until the node stops.
 * Whoever can read the data directory (private to the relay's user) can
 * already do anything the token allows, so the file gives no one more; and
 * no token has to be configured for the commands to work.
 */
const CONTROL_FILE = "control.json";

export interface ControlAccess {
  readonly url: string;
  readonly token: string;
}

export function newControlToken(): string {
  return randomBytes(24).toString("base64url");
}

/** The URL this machine reaches the HTTP listener at: a wildcard address is reached on loopback. */
export function localUrl(host: string, port: number): string {
  const reachable = host === "0.0.0.0" ? "127.0.0.1" : host === "::" ? "::1" : host;
  return `http://${isIPv6(reachable) ? `[${reachable}]` : reachable}:${port}`;
}

/** Write the file whole or not at all (a reader never sees half of it), private to the relay's user. */
export function writeControlFile(dataDir: string, access: ControlAccess): void {
  const path = join(dataDir, CONTROL_FILE);
  const temporary = `${path}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(access)}\n`, { mode: 0o600 });
  chmodSync(temporary, 0o600); // in case a stale temporary file had other bits
  renameSync(temporary, path);
}

export function removeControlFile(dataDir: string): void {
  rmSync(join(dataDir, CONTROL_FILE), { force: true });
}

/** The running node's URL and token, or why there are none. */
export function readControlFile(dataDir: string): ControlAccess | { readonly missing: string } {
  const path = join(dataDir, CONTROL_FILE);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as { code?: string }).code;
    return { missing: code === "ENOENT" ? `${path} does not exist` : `cannot read ${path}: ${code}` };
  }
  const access = JSON.parse(text) as Partial<ControlAccess>;
  if (typeof access.url !== "string" || typeof access.token !== "string") return { missing: `${path} is damaged` };
  return { url: access.url, token: access.token };
}
