/** DKIM signing keys (RFC 6376 3.6.1; Ed25519: RFC 8463) and the TXT records that publish them. */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";

export const DKIM_ALGORITHMS = ["rsa", "ed25519"] as const;
export type DkimAlgorithm = (typeof DKIM_ALGORITHMS)[number];

/** RSA modulus size; RFC 8301 asks for at least 1024, receivers increasingly want 2048. */
export const RSA_BITS = 2048;

export interface GeneratedKey {
  readonly algorithm: DkimAlgorithm;
  /** PKCS#8 PEM. Secret: never logged, never in an event or an API answer. */
  readonly privateKeyPem: string;
  /** The p= value: base64 of the SPKI DER for RSA, of the raw 32-byte key for Ed25519. */
  readonly publicKey: string;
}

/** The last 32 bytes of an Ed25519 SPKI DER are the raw public key (RFC 8410 4). */
const ED25519_SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

export function generateDkimKey(algorithm: DkimAlgorithm): GeneratedKey {
  const pair = algorithm === "rsa"
    ? generateKeyPairSync("rsa", { modulusLength: RSA_BITS, publicExponent: 0x10001 })
    : generateKeyPairSync("ed25519");
  return {
    algorithm,
    privateKeyPem: pair.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicKey: publicKeyValue(algorithm, pair.publicKey),
  };
}

/** The p= value of a public key (RFC 6376 3.6.1; RFC 8463 4.2: Ed25519 as the bare key, not SPKI). */
export function publicKeyValue(algorithm: DkimAlgorithm, key: KeyObject): string {
  const spki = key.export({ type: "spki", format: "der" });
  if (algorithm === "rsa") return spki.toString("base64");
  if (
    spki.length !== ED25519_SPKI_PREFIX.length + 32 ||
    !spki.subarray(0, ED25519_SPKI_PREFIX.length).equals(ED25519_SPKI_PREFIX)
  ) {
    throw new Error("not an Ed25519 public key");
  }
  return spki.subarray(ED25519_SPKI_PREFIX.length).toString("base64");
}

/** The p= value for a stored private key (used to check a key against its record). */
export function publicKeyOf(algorithm: DkimAlgorithm, privateKeyPem: string): string {
  return publicKeyValue(algorithm, createPublicKey(createPrivateKey(privateKeyPem)));
}

/** The TXT record text at `<selector>._domainkey.<domain>`. */
export function dkimTxtRecord(algorithm: DkimAlgorithm, publicKey: string): string {
  return `v=DKIM1; k=${algorithm}; p=${publicKey}`;
}

export function dkimRecordName(selector: string, domain: string): string {
  return `${selector}._domainkey.${domain}`;
}

/** Tag=value list (RFC 6376 3.2): tags lower-cased, whitespace (FWS) removed from values. */
export function parseTagList(text: string): Map<string, string> {
  const tags = new Map<string, string>();
  for (const part of text.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim().toLowerCase();
    if (name !== "" && !tags.has(name)) tags.set(name, part.slice(eq + 1).replace(/\s+/g, ""));
  }
  return tags;
}

export type DkimRecordMatch =
  | { readonly match: true }
  | { readonly match: false; readonly reason: string };

/**
 * Whether a published TXT text carries our key: v=DKIM1 (when present), k=
 * (default rsa) and p= equal to ours.
 */
export function matchDkimRecord(published: string, algorithm: DkimAlgorithm, publicKey: string): DkimRecordMatch {
  const tags = parseTagList(published);
  const v = tags.get("v");
  if (v !== undefined && v !== "DKIM1") return { match: false, reason: `v=${v}, expected DKIM1` };
  const k = (tags.get("k") ?? "rsa").toLowerCase();
  if (k !== algorithm) return { match: false, reason: `k=${k}, expected ${algorithm}` };
  const p = tags.get("p");
  if (p === undefined) return { match: false, reason: "no p= tag" };
  if (p === "") return { match: false, reason: "p= is empty: the key is revoked" };
  if (p !== publicKey) return { match: false, reason: "p= is a different key" };
  return { match: true };
}

/** A selector is a DNS label sequence (RFC 6376 3.1): letters, digits, hyphens, dots between labels. */
export function selectorProblem(selector: string): string | undefined {
  const labels = selector.split(".");
  if (selector.length > 0 && selector.length <= 63 && labels.every((l) => /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/.test(l))) {
    return undefined;
  }
  return `selector ${
    JSON.stringify(selector)
  } is not valid: expected DNS labels of letters, digits and hyphens, such as s2026`;
}

/**
 * A default selector that says what it is and when it was made, unique among
 * `taken`: rsa20260518, ed20260518, then rsa20260518b, ... on the same day.
 */
export function defaultSelector(algorithm: DkimAlgorithm, now: number, taken: ReadonlySet<string>): string {
  const day = new Date(now).toISOString().slice(0, 10).replaceAll("-", "");
  const base = `${algorithm === "rsa" ? "rsa" : "ed"}${day}`;
  if (!taken.has(base)) return base;
  for (let i = 1;; i++) {
    const candidate = `${base}${suffix(i)}`;
    if (!taken.has(candidate)) return candidate;
  }
}

/** b, c, ..., z, ba, bb, ... */
function suffix(i: number): string {
  const letters = "abcdefghijklmnopqrstuvwxyz";
  let n = i;
  let out = "";
  do {
    out = letters[n % 26] + out;
    n = Math.floor(n / 26);
  } while (n > 0);
  return out;
}
