import { cidrContains, type Cidr } from "../core/cidr.ts";

export interface AccessPolicy {
  readonly relayNetworks: readonly Cidr[];
  readonly bounceDomain?: string;
}

export interface Client {
  readonly ip: string;
  readonly authUser?: string;
}

/**
 * Relay control (SPEC.md, SMTP): any destination for authenticated clients or
 * clients inside RELAY_RELAY_NETWORKS; only the bounce domain for everyone else.
 */
export function mayRelay(policy: AccessPolicy, client: Client, recipientDomain: string): boolean {
  if (client.authUser !== undefined) return true;
  if (cidrContains(policy.relayNetworks, client.ip)) return true;
  return policy.bounceDomain !== undefined && recipientDomain === policy.bounceDomain;
}
