import { isIPv4 } from "../core/address.ts";
import { ipToBigInt } from "../core/cidr.ts";
import type { Resolver } from "../dns/resolver.ts";
import { reverseName } from "../dns/reverse-name.ts";
import { type DnsResult, normalizeName } from "../dns/types.ts";
import { type CheckResult, fail, pass, warn } from "./result.ts";

/** Errors that mean no answer was had, rather than an answer saying there is nothing. */
const UNREACHED = new Set(["SERVFAIL", "REFUSED", "TIMEOUT", "FORMERR", "NETWORK"]);

const DNS_FIX = "check RELAY_DNS_SERVERS (or /etc/resolv.conf) and run relay check again";

/**
 * RELAY_HOSTNAME must resolve to RELAY_SOURCE_IP, and the PTR of that
 * address must name RELAY_HOSTNAME (forward-confirmed reverse DNS): large
 * receivers reject or junk mail from an address without it. When DNS
 * cannot be asked, that is a warning: the records may be right.
 */
export async function checkHostName(
  resolver: Resolver,
  hostname: string,
  sourceIp: string | undefined,
): Promise<CheckResult[]> {
  return sourceIp === undefined
    ? [await resolvesAtAll(resolver, hostname)]
    : await Promise.all([resolvesTo(resolver, hostname, sourceIp), pointsBack(resolver, hostname, sourceIp)]);
}

async function resolvesAtAll(resolver: Resolver, hostname: string): Promise<CheckResult> {
  const what = `RELAY_HOSTNAME ${hostname}`;
  const [a, aaaa] = await Promise.all([resolver.a(hostname), resolver.aaaa(hostname)]);
  const addresses = [...(a.ok ? a.answers : []), ...(aaaa.ok ? aaaa.answers : [])];
  if (addresses.length > 0) return pass(what, `resolves to ${addresses.join(", ")}`);
  const unreached = [a, aaaa].find((r) => !r.ok && UNREACHED.has(r.error));
  if (unreached && !unreached.ok) return warn(what, `DNS could not be asked (${failure(unreached)})`, DNS_FIX);
  return fail(what, "has no A or AAAA record", `publish an A (or AAAA) record for ${hostname}`);
}

async function resolvesTo(resolver: Resolver, hostname: string, sourceIp: string): Promise<CheckResult> {
  const type = isIPv4(sourceIp) ? "A" : "AAAA";
  const what = `RELAY_HOSTNAME ${hostname} ${type}`;
  const result = type === "A" ? await resolver.a(hostname) : await resolver.aaaa(hostname);
  const fix = `publish ${hostname} ${type} ${sourceIp}`;
  if (!result.ok) {
    if (UNREACHED.has(result.error)) return warn(what, `DNS could not be asked (${failure(result)})`, DNS_FIX);
    return fail(what, `no ${type} record (${result.error}), so it does not resolve to ${sourceIp}`, fix);
  }
  const wanted = ipToBigInt(sourceIp);
  if (result.answers.some((address) => ipToBigInt(address) === wanted)) {
    return pass(what, `resolves to RELAY_SOURCE_IP ${sourceIp}`);
  }
  return fail(what, `resolves to ${result.answers.join(", ")}, not to RELAY_SOURCE_IP ${sourceIp}`, fix);
}

async function pointsBack(resolver: Resolver, hostname: string, sourceIp: string): Promise<CheckResult> {
  const name = reverseName(sourceIp)!;
  const what = `PTR of ${sourceIp}`;
  const result = await resolver.ptr(name);
  const fix = `ask whoever runs ${sourceIp} (your VPS provider) to set its PTR to ${hostname}`;
  if (!result.ok) {
    if (UNREACHED.has(result.error)) return warn(what, `DNS could not be asked (${failure(result)})`, DNS_FIX);
    return fail(what, `no PTR record at ${name} (${result.error})`, fix);
  }
  if (result.answers.includes(normalizeName(hostname))) return pass(what, `names RELAY_HOSTNAME ${hostname}`);
  return fail(what, `names ${result.answers.join(", ")}, not RELAY_HOSTNAME ${hostname}`, fix);
}

function failure(result: Extract<DnsResult<unknown>, { ok: false }>): string {
  return result.detail === undefined ? result.error : `${result.error}: ${result.detail}`;
}
