import { networkInterfaces } from "node:os";
import { ipToBigInt } from "../core/cidr.ts";
import { type CheckResult, fail, pass, warn } from "./result.ts";

/**
 * RELAY_SOURCE_IP must be on one of this host's interfaces: every outbound
 * connection binds to it, and binding to an address the host lacks fails.
 */
export function checkSourceIp(sourceIp: string | undefined): CheckResult {
  if (sourceIp === undefined) {
    return warn(
      "RELAY_SOURCE_IP",
      "not set: mail leaves from whichever address the system picks, and its PTR is not checked",
      "set RELAY_SOURCE_IP to the address this node sends from",
    );
  }
  const what = `RELAY_SOURCE_IP ${sourceIp}`;
  const wanted = ipToBigInt(sourceIp);
  const addresses = Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address));
  if (addresses.some((address) => ipToBigInt(address) === wanted)) return pass(what, "an address of this host");
  return fail(
    what,
    `not an address of this host (it has ${addresses.join(", ")})`,
    "set RELAY_SOURCE_IP to one of them, or add the address to an interface",
  );
}
