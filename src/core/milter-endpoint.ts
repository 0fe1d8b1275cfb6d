/**
 * Where a milter listens, written as Postfix's smtpd_milters writes it:
 * `inet:host:port` (an IPv6 host in brackets, `inet:[::1]:11332`) or
 * `unix:/path/to/socket`. Configuration reads it; src/milter/ connects to it.
 */

export type MilterEndpoint =
  | { readonly kind: "inet"; readonly host: string; readonly port: number }
  | { readonly kind: "unix"; readonly path: string };

/** The endpoint `text` names; a RangeError quoting it when it names none. */
export function parseMilterEndpoint(text: string): MilterEndpoint {
  const unix = /^unix:(\/.*)$/.exec(text);
  if (unix) return { kind: "unix", path: unix[1]! };
  const inet = /^inet:(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(text);
  const port = Number(inet?.[3]);
  if (!inet || port < 1 || port > 65535) {
    throw new RangeError(`not a milter address (inet:host:port or unix:/path): ${JSON.stringify(text)}`);
  }
  return { kind: "inet", host: (inet[1] ?? inet[2])!, port };
}

export function formatMilterEndpoint(endpoint: MilterEndpoint): string {
  if (endpoint.kind === "unix") return `unix:${endpoint.path}`;
  return `inet:${endpoint.host.includes(":") ? `[${endpoint.host}]` : endpoint.host}:${endpoint.port}`;
}
