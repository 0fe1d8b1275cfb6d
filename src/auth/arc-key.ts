/**
 * The relay's ARC sealing key (RFC 8617): the active RSA DKIM key of its
 * own domain (RELAY_ARC_DOMAIN) from the DKIM key store. ARC allows
 * rsa-sha256 only, so an Ed25519 key of that domain is never used.
 */
import type { KeyObject } from "node:crypto";
import type { Logger } from "../core/log.ts";
import type { DomainService } from "./domains.ts";
import type { ArcSealKey } from "./inbound/arc-seal.ts";

/**
 * `createInboundAuth`'s `arcKey`: undefined without a domain (no sealing);
 * otherwise asked per message, it answers the domain's active RSA key (the
 * signer's short cache, so a key added or rotated is picked up) or
 * undefined while there is none, which is logged once until one appears.
 */
export function arcKeySource(
  domains: Pick<DomainService, "signingKeys">,
  domain: string | undefined,
  log?: Logger,
): (() => Promise<ArcSealKey | undefined>) | undefined {
  if (domain === undefined) return undefined;
  const pem = new WeakMap<KeyObject, string>();
  let warned = false;
  return async () => {
    const rsa = (await domains.signingKeys(domain)).find((k) => k.algorithm === "rsa");
    if (!rsa) {
      if (!warned) {
        log?.("warn", "RELAY_ARC_DOMAIN has no active RSA DKIM key: forwarded mail is not ARC-sealed", {
          domain,
          fix: `relay domains add ${domain} --algorithm rsa`,
        });
      }
      warned = true;
      return undefined;
    }
    warned = false;
    let text = pem.get(rsa.privateKey);
    if (text === undefined) {
      text = rsa.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
      pem.set(rsa.privateKey, text);
    }
    return { domain, selector: rsa.selector, privateKey: text };
  };
}
