import { isIP } from "node:net";
import { ipScope } from "../core/ip-scope.ts";

/**
 * Where a webhook may lead (server-side request forgery): whoever may
 * register an endpoint must not make the relay reach the node's own host or
 * networks. So loopback, private, shared, link-local, unique-local and
 * unspecified addresses are refused unless RELAY_WEBHOOK_ALLOW_PRIVATE says
 * so; addresses that no TCP connection can reach (multicast, reserved) always
 * are. The URL's host is checked at registration when it is an address or a
 * name that is the host itself (RFC 6761 6.3: localhost), and every address
 * a name resolves to is checked again at connect time, which connects to the
 * address it checked, so a name that changes its answers (DNS rebinding)
 * gains nothing.
 */

/** Why the relay may not connect to `address`, or undefined when it may. */
export function refusedAddress(address: string, allowPrivate: boolean): string | undefined {
  const scope = ipScope(address);
  if (scope === undefined || (scope.kind === "internal" && allowPrivate)) return undefined;
  const unless = scope.kind === "internal" ? " (RELAY_WEBHOOK_ALLOW_PRIVATE is false)" : "";
  return `${address} is ${scope.name} (${scope.range})${unless}`;
}

/** The URL's host without IPv6 brackets: a name or an address. */
export function hostOf(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, "$1");
}

const isLocalhost = (host: string) => /^(?:.+\.)?localhost\.?$/i.test(host);

/** A webhook URL as registered: http or https, no credentials, no fragment, and a host it may lead to. */
export function checkWebhookUrl(
  text: string,
  allowPrivate: boolean,
): { ok: true; url: URL } | { ok: false; reason: string } {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { ok: false, reason: `${JSON.stringify(text)} is not a URL` };
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    return { ok: false, reason: `expected an http or https URL, got ${url.protocol}` };
  }
  if (url.username !== "" || url.password !== "") return { ok: false, reason: "the URL may not carry credentials" };
  if (url.hash !== "") return { ok: false, reason: "the URL may not carry a fragment" };
  const host = hostOf(url);
  if (isIP(host) !== 0) {
    const refused = refusedAddress(host, allowPrivate);
    return refused === undefined ? { ok: true, url } : { ok: false, reason: refused };
  }
  if (isLocalhost(host) && !allowPrivate) {
    return { ok: false, reason: `${host} is the host itself (RELAY_WEBHOOK_ALLOW_PRIVATE is false)` };
  }
  return { ok: true, url };
}
