import { namedRoute, type Route } from "../core/route.ts";
import { literalAddress } from "../core/address.ts";
import { type Cidr, cidrContains, ipToBigInt } from "../core/cidr.ts";
import { ipScope } from "../core/ip-scope.ts";

export interface RelayPolicy {
  readonly relayNetworks: readonly Cidr[];
  readonly bounceDomain?: string;
}

export interface AccessPolicy extends RelayPolicy {
  /** Where address literals may lead: see literalRefusal. */
  readonly literals: LiteralPolicy;
}

export interface Client {
  readonly ip: string;
  readonly authUser?: string;
}

/**
 * Relay control (SPEC.md, SMTP): any destination for authenticated clients or
 * clients inside RELAY_RELAY_NETWORKS; only the bounce domain for everyone else.
 */
export function mayRelay(policy: RelayPolicy, client: Client, recipientDomain: string): boolean {
  if (client.authUser !== undefined) return true;
  if (cidrContains(policy.relayNetworks, client.ip)) return true;
  return policy.bounceDomain !== undefined && recipientDomain === policy.bounceDomain;
}

export interface LiteralPolicy {
  /** RELAY_ROUTES: a literal named there goes where the operator said, whatever address it names. */
  readonly routes: readonly Route[];
  /** This node's own addresses (its interfaces, RELAY_SOURCE_IP, its listeners); asked at each check, as interfaces change. */
  readonly ownAddresses: () => Iterable<string>;
}

export interface LiteralRefusal {
  /** internal: this node or a network behind it (5.7.1); undeliverable: no single host (multicast, reserved). */
  readonly kind: "internal" | "undeliverable";
  readonly text: string;
}

/**
 * Mail to an address literal goes to the address it names (delivery's
 * route.ts), and so do bounces to a reverse-path at one. A literal naming
 * this node, its loopback, or a private, link-local or shared network would
 * have the relay deliver into its own host or networks; one naming a
 * multicast or reserved address reaches no host. Both are refused unless
 * RELAY_ROUTES names the literal. Undefined: the domain may be used.
 */
export function literalRefusal(policy: LiteralPolicy, domain: string): LiteralRefusal | undefined {
  const address = literalAddress(domain);
  if (address === undefined || namedRoute(policy.routes, domain)) return undefined;
  const scope = ipScope(address);
  if (scope?.kind === "undeliverable") {
    return {
      kind: "undeliverable",
      text: `${domain} is ${scope.name} (${scope.range}): no mail can be delivered to it`,
    };
  }
  const what = scope
    ? `${scope.name} (${scope.range})`
    : isOwnAddress(policy, address)
    ? "an address of this node"
    : undefined;
  if (what === undefined) return undefined;
  return {
    kind: "internal",
    text:
      `${domain} is ${what}: the relay does not deliver to its own host or networks unless RELAY_ROUTES names the literal`,
  };
}

function isOwnAddress(policy: LiteralPolicy, address: string): boolean {
  const value = ipToBigInt(address);
  for (const own of policy.ownAddresses()) if (ipToBigInt(own) === value) return true;
  return false;
}
