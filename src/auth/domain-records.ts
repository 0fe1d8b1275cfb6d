/** The DNS records a sending domain should publish for this relay: SPF, DKIM, DMARC, return path, MTA-STS, TLS-RPT. */
import { isIPv6 } from "node:net";
import { sameOrganization } from "./mailauth.ts";
import type { DkimKeyInfo } from "../queue/domains.ts";
import { dkimRecordName, dkimTxtRecord } from "./dkim-keys.ts";

export type RecordPurpose =
  | "spf"
  | "dkim"
  | "dmarc"
  | "return-path-mx"
  | "return-path-spf"
  | "mta-sts"
  | "mta-sts-policy"
  | "tls-rpt";

export interface RecordToPublish {
  readonly purpose: RecordPurpose;
  /** Owner name (no trailing dot); for the MTA-STS policy, the HTTPS URL. */
  readonly name: string;
  /** "HTTPS" is not DNS: a file to serve (the MTA-STS policy). */
  readonly type: "TXT" | "MX" | "HTTPS";
  readonly value: string;
  /** Optional records are worth having but not needed for mail to authenticate. */
  readonly required: boolean;
  readonly note?: string;
  /** DKIM only. */
  readonly selector?: string;
  readonly algorithm?: DkimKeyInfo["algorithm"];
  readonly keyState?: DkimKeyInfo["state"];
  /** DKIM, retiring key: the record must stay until then (ISO 8601). */
  readonly neededUntil?: string;
}

export interface RecordContext {
  /** RELAY_SOURCE_IP: the address this node sends from. */
  readonly sourceIp?: string;
  /** In a fleet: every node's RELAY_SOURCE_IP as the node registry has them (this node's too). */
  readonly fleetIps?: readonly string[];
  /** RELAY_BOUNCE_DOMAIN. */
  readonly bounceDomain?: string;
  /** RELAY_HOSTNAME: the MX for the bounce domain. */
  readonly hostname: string;
  /** Shown in notes: how often pending keys are checked. */
  readonly checkIntervalText: string;
  readonly now: number;
}

/** The addresses mail for a domain leaves from: this node's, and in a fleet every node's. */
export function sendingIps(context: Pick<RecordContext, "sourceIp" | "fleetIps">): string[] {
  const ips = context.sourceIp === undefined ? [] : [context.sourceIp];
  for (const ip of context.fleetIps ?? []) if (!ips.includes(ip)) ips.push(ip);
  return ips;
}

/** What goes after v=spf1: one ip4:/ip6: per sending IP, and a placeholder for this node's when it is unknown. */
export function spfMechanism(context: Pick<RecordContext, "sourceIp" | "fleetIps">): string {
  const mechanisms = sendingIps(context).map((ip) => `${isIPv6(ip) ? "ip6" : "ip4"}:${ip}`);
  if (context.sourceIp === undefined) mechanisms.unshift("ip4:<this node's IP>");
  return mechanisms.join(" ");
}

export function spfRecord(context: Pick<RecordContext, "sourceIp" | "fleetIps">): string {
  return `v=spf1 ${spfMechanism(context)} ~all`;
}

export function dmarcRecord(domain: string): string {
  return `v=DMARC1; p=none; rua=mailto:dmarc@${domain}`;
}

export function tlsRptRecord(domain: string): string {
  return `v=TLSRPTv1; rua=mailto:tlsrpt@${domain}`;
}

/** Keys whose record belongs in DNS: the one signing, one waiting to, and replaced ones in their grace period. */
export function publishedKeys(keys: readonly DkimKeyInfo[]): DkimKeyInfo[] {
  return keys.filter((k) => k.state === "active" || k.state === "pending" || k.state === "retiring");
}

export function dkimRecordToPublish(
  key: DkimKeyInfo,
  context: Pick<RecordContext, "checkIntervalText">,
): RecordToPublish {
  const base = {
    purpose: "dkim" as const,
    name: dkimRecordName(key.selector, key.domain),
    type: "TXT" as const,
    value: dkimTxtRecord(key.algorithm, key.publicKey),
    selector: key.selector,
    algorithm: key.algorithm,
    keyState: key.state,
  };
  const ed = key.algorithm === "ed25519"
    ? " Ed25519 (RFC 8463) is not verified by every receiver; keep an RSA key beside it."
    : "";
  switch (key.state) {
    case "active":
      return { ...base, required: true, note: `signs mail from ${key.domain} now.${ed}` };
    case "pending":
      return {
        ...base,
        required: true,
        note: `new key: publish it. The relay keeps signing with the current key until this record is visible in DNS ` +
          `(checked every ${context.checkIntervalText}, or now with "relay domains check ${key.domain}").${ed}`,
      };
    default: {
      const until = new Date(key.retireAfter ?? 0).toISOString();
      return {
        ...base,
        required: true,
        neededUntil: until,
        note:
          `replaced key, no longer signs: still needed until ${until} (mail signed with it may still be verified), then remove it.`,
      };
    }
  }
}

/** Every record to publish for `domain`, required ones first. */
export function recordsToPublish(
  domain: string,
  keys: readonly DkimKeyInfo[],
  context: RecordContext,
): RecordToPublish[] {
  const records: RecordToPublish[] = [];
  const spfNote =
    (context.sourceIp === undefined
      ? "RELAY_SOURCE_IP is not set: replace <this node's IP> with the address this node sends from. "
      : "") +
    (context.fleetIps === undefined
      ? "Include every relay node's IP that sends for this domain (one ip4:/ip6: each). "
      : "It lists every node of the fleet, from its registry: publish it again when a node joins or leaves. ") +
    "A name has one SPF record: merge this into an existing v=spf1 record instead of adding a second one.";
  records.push({
    purpose: "spf",
    name: domain,
    type: "TXT",
    value: spfRecord(context),
    required: true,
    note: spfNote,
  });
  for (const key of publishedKeys(keys)) records.push(dkimRecordToPublish(key, context));
  records.push({
    purpose: "dmarc",
    name: `_dmarc.${domain}`,
    type: "TXT",
    value: dmarcRecord(domain),
    required: true,
    note: "a starting policy: receivers send aggregate reports to the rua address and reject nothing. " +
      "When the reports show all your mail passes, move to p=quarantine, then p=reject.",
  });
  if (context.bounceDomain !== undefined) {
    const bounce = context.bounceDomain;
    records.push({
      purpose: "return-path-mx",
      name: bounce,
      type: "MX",
      value: `10 ${context.hostname}`,
      required: true,
      note:
        `return path (RELAY_BOUNCE_DOMAIN): bounces and complaints to addresses at ${bounce} come back to this relay.`,
    });
    records.push({
      purpose: "return-path-spf",
      name: bounce,
      type: "TXT",
      value: spfRecord(context),
      required: true,
      note: sameOrganization(domain, bounce)
        ? `${bounce} shares ${domain}'s organizational domain, so the relay delivers mail from @${domain} with the envelope sender ` +
          `b.<message>.<recipient>.<tag>@${bounce} (VERP, its tag a keyed hash; the submitter's stays stored and gets the relay's own DSNs): receivers check SPF ` +
          `for ${bounce}, and a pass aligns for DMARC (relaxed).`
        : `alignment impossible: ${bounce} is not under ${domain}'s organizational domain, so the relay leaves the envelope sender ` +
          `of mail from @${domain} as submitted (SPF is then checked for the submitter's domain). Configure a bounce domain under ` +
          `the From domain (e.g. RELAY_BOUNCE_DOMAIN=bounces.${domain}) to align it.`,
    });
  }
  records.push({
    purpose: "mta-sts",
    name: `_mta-sts.${domain}`,
    type: "TXT",
    value: `v=STSv1; id=${new Date(context.now).toISOString().slice(0, 10).replaceAll("-", "")}01`,
    required: false,
    note: `optional, and only if ${domain} receives mail: asks senders to use verified TLS to its MX hosts. ` +
      "Needs the policy file below; change id= whenever the policy changes.",
  });
  records.push({
    purpose: "mta-sts-policy",
    name: `https://mta-sts.${domain}/.well-known/mta-sts.txt`,
    type: "HTTPS",
    value: `version: STSv1\nmode: testing\nmx: <each MX host of ${domain}>\nmax_age: 604800`,
    required: false,
    note: `optional: served over HTTPS with a valid certificate for mta-sts.${domain}; start with mode: testing.`,
  });
  records.push({
    purpose: "tls-rpt",
    name: `_smtp._tls.${domain}`,
    type: "TXT",
    value: tlsRptRecord(domain),
    required: false,
    note: "optional: receivers report TLS problems delivering to this domain (pairs with MTA-STS).",
  });
  return records;
}

/** A TXT value as a zone file wants it: character-strings of at most 255 octets (RFC 1035 3.3.14). */
export function zoneTxt(value: string): string {
  const parts: string[] = [];
  for (let i = 0; i < value.length; i += 255) parts.push(`"${value.slice(i, i + 255).replace(/(["\\])/g, "\\$1")}"`);
  return parts.length > 0 ? parts.join(" ") : '""';
}

/** One record as lines of text for the command line. */
export function formatRecord(record: RecordToPublish): string[] {
  const tag = record.required ? "required" : "optional";
  const title = record.purpose === "dkim"
    ? `DKIM (${record.algorithm}, selector ${record.selector}, ${
      record.keyState === "retiring" ? `retiring, still needed until ${record.neededUntil}` : record.keyState
    })`
    : PURPOSE_TITLES[record.purpose];
  const lines = [`[${tag}] ${title}`];
  if (record.type === "HTTPS") {
    lines.push(`  ${record.name}:`);
    for (const l of record.value.split("\n")) lines.push(`    ${l}`);
  } else {
    lines.push(`  ${record.name}.  ${record.type}  ${record.type === "TXT" ? zoneTxt(record.value) : record.value}`);
  }
  if (record.note) lines.push(`  note: ${record.note}`);
  return lines;
}

const PURPOSE_TITLES: Record<RecordPurpose, string> = {
  spf: "SPF: which IPs may send for the domain",
  dkim: "DKIM",
  dmarc: "DMARC: what receivers do when authentication fails",
  "return-path-mx": "Return path MX",
  "return-path-spf": "Return path SPF",
  "mta-sts": "MTA-STS",
  "mta-sts-policy": "MTA-STS policy file",
  "tls-rpt": "TLS-RPT",
};
