/**
 * Does DNS match what a sending domain should publish? Each record gets a
 * PASS/FAIL/WARN with the fix, and the report says in plain words what a
 * receiver would conclude (SPF evaluated with mailauth for this node's IP,
 * DKIM keys compared with ours, DMARC policy, return-path alignment).
 */
import { isIP } from "node:net";
import { checkSpf as mailauthSpf, getDmarcRecord, sameOrganization } from "./mailauth.ts";
import { mailauthResolver } from "./mailauth-resolver.ts";
import type { Resolver } from "../dns/resolver.ts";
import type { DkimKeyInfo } from "../queue/domains.ts";
import { matchDkimRecord } from "./dkim-keys.ts";
import {
  dkimRecordToPublish,
  publishedKeys,
  type RecordContext,
  type RecordPurpose,
  sendingIps,
  spfMechanism,
  spfRecord,
  zoneTxt,
} from "./domain-records.ts";

export type CheckStatus = "pass" | "fail" | "warn";

export interface RecordCheck {
  readonly purpose: RecordPurpose;
  readonly name: string;
  readonly required: boolean;
  readonly status: CheckStatus;
  /** What DNS holds there (TXT texts, MX hosts), or the error. */
  readonly found: readonly string[];
  readonly detail: string;
  /** What to change, when not a pass. */
  readonly fix?: string;
  readonly selector?: string;
  readonly algorithm?: DkimKeyInfo["algorithm"];
  readonly keyState?: DkimKeyInfo["state"];
}

export interface DomainCheckReport {
  readonly domain: string;
  readonly checkedAt: string;
  /** Every required record passes. */
  readonly ok: boolean;
  readonly records: readonly RecordCheck[];
  /** What a receiver would conclude, in plain words. */
  readonly verdict: readonly string[];
  /** Ids of keys whose record is published and matches (a pending one may now sign). */
  readonly visibleKeyIds: readonly string[];
}

export interface CheckInput extends RecordContext {
  readonly domain: string;
  readonly keys: readonly DkimKeyInfo[];
  readonly resolver: Resolver;
}

async function txtAt(resolver: Resolver, name: string): Promise<{ texts: string[]; error?: string }> {
  const result = await resolver.txt(name);
  if (result.ok) return { texts: result.answers };
  if (result.error === "NXDOMAIN" || result.error === "NODATA") return { texts: [] };
  return { texts: [], error: `DNS lookup failed: ${result.error}${result.detail ? ` (${result.detail})` : ""}` };
}

const SPF_WORDS: Record<string, string> = {
  pass: "SPF pass",
  fail: "SPF fail (the record's -all excludes this IP): many receivers reject such mail",
  softfail: "SPF softfail (~all does not list this IP): mail is likely to be marked as spam",
  neutral: "SPF neutral (?all): SPF says nothing; the mail rests on DKIM",
  none: "SPF none (no record): the mail rests on DKIM",
  temperror: "SPF temperror (DNS trouble): the receiver may defer the mail",
  permerror: "SPF permerror (the record is broken): most receivers treat it as a fail",
};

/** SPF of `domain` evaluated for `ip` by mailauth: the result word and its explanation. */
async function evaluateSpf(
  domain: string,
  ip: string,
  input: CheckInput,
): Promise<{ ip: string; result: string; comment: string }> {
  const answer = await mailauthSpf({
    sender: `postmaster@${domain}`,
    ip,
    helo: input.hostname,
    mta: input.hostname,
    resolver: mailauthResolver(input.resolver),
  });
  return { ip, result: answer.status.result, comment: answer.status.comment || "" };
}

async function checkSpf(
  purpose: "spf" | "return-path-spf",
  domain: string,
  input: CheckInput,
): Promise<{ check: RecordCheck; result?: string }> {
  const wanted = spfRecord(input);
  const { texts, error } = await txtAt(input.resolver, domain);
  const spfs = texts.filter((t) => /^v=spf1(\s|$)/i.test(t.trim()));
  const base = { purpose, name: domain, required: true, found: error ? [error] : spfs };
  if (error) {
    return {
      check: {
        ...base,
        status: "fail",
        detail: error,
        fix: "make sure the domain's name servers answer, then check again",
      },
    };
  }
  if (spfs.length === 0) {
    return {
      check: {
        ...base,
        status: "fail",
        detail: `no SPF record at ${domain}`,
        fix: `publish ${domain}. TXT ${zoneTxt(wanted)}`,
      },
    };
  }
  if (spfs.length > 1) {
    return {
      check: {
        ...base,
        status: "fail",
        detail: `${spfs.length} SPF records at ${domain}: receivers treat that as permerror`,
        fix: `merge them into one v=spf1 record that includes ${spfMechanism(input)}`,
      },
      result: "permerror",
    };
  }
  if (input.sourceIp === undefined) {
    return {
      check: {
        ...base,
        status: "warn",
        detail: "an SPF record is published; whether it covers this node cannot be told without RELAY_SOURCE_IP",
        fix: "set RELAY_SOURCE_IP to the address this node sends from, and make sure the record lists it",
      },
    };
  }
  // This node's IP decides the verdict below; in a fleet every node's must pass too.
  const [own, ...others] = await Promise.all(sendingIps(input).map((ip) => evaluateSpf(domain, ip, input)));
  const result = own!.result;
  const failing = [own!, ...others].filter((e) => e.result !== "pass");
  if (failing.length === 0) {
    return { check: { ...base, status: "pass", detail: `SPF passes for ${sendingIps(input).join(", ")}` }, result };
  }
  const missing = failing.map((e) => spfMechanism({ sourceIp: e.ip })).join(" ");
  return {
    check: {
      ...base,
      status: "fail",
      detail: failing.map((e) => `SPF for ${e.ip} is ${e.result}${e.comment ? ` (${e.comment})` : ""}`).join("; "),
      fix: `add ${missing} to the record at ${domain} (before its "all"), e.g. ${zoneTxt(wanted)}`,
    },
    result,
  };
}

async function checkDkim(key: DkimKeyInfo, input: CheckInput): Promise<RecordCheck> {
  const record = dkimRecordToPublish(key, input);
  const { texts, error } = await txtAt(input.resolver, record.name);
  const base = {
    purpose: "dkim" as const,
    name: record.name,
    required: true,
    selector: key.selector,
    algorithm: key.algorithm,
    keyState: key.state,
    found: error ? [error] : texts,
  };
  const fix = `publish ${record.name}. TXT ${zoneTxt(record.value)}`;
  if (error) return { ...base, status: "fail", detail: error, fix };
  const dkims = texts.filter((t) => /^\s*v\s*=\s*DKIM1\b/.test(t) || /(^|;)\s*p\s*=/.test(t));
  const matched = dkims.some((t) => matchDkimRecord(t, key.algorithm, key.publicKey).match);
  if (matched && dkims.length === 1) {
    return { ...base, status: "pass", detail: `the published key matches ours (${key.state})` };
  }
  let detail: string;
  if (dkims.length === 0) detail = `no DKIM record at ${record.name}`;
  else if (dkims.length > 1) {
    detail = `${dkims.length} TXT records at ${record.name}: verifiers may pick any, publish exactly one`;
  } else {
    const why = matchDkimRecord(dkims[0]!, key.algorithm, key.publicKey);
    detail = `the published record does not match our key: ${why.match ? "" : why.reason}`;
  }
  if (key.state === "pending") {
    return {
      ...base,
      status: "warn",
      detail: `${detail}; the relay keeps signing with the current key until this one is visible`,
      fix,
    };
  }
  if (key.state === "retiring") {
    return {
      ...base,
      status: "warn",
      detail: `${detail}; mail already signed with this key will fail DKIM until ${
        new Date(key.retireAfter ?? 0).toISOString()
      }`,
      fix,
    };
  }
  return { ...base, status: "fail", detail, fix };
}

async function checkOptionalTxt(
  purpose: "mta-sts" | "tls-rpt",
  name: string,
  prefix: RegExp,
  input: CheckInput,
  what: string,
): Promise<RecordCheck> {
  const { texts, error } = await txtAt(input.resolver, name);
  const found = texts.filter((t) => prefix.test(t));
  if (found.length === 1) {
    return { purpose, name, required: false, status: "pass", found, detail: `${what} is published` };
  }
  return {
    purpose,
    name,
    required: false,
    status: "warn",
    found: error ? [error] : found,
    detail: error ??
      (found.length === 0 ? `no ${what} record (optional)` : `${found.length} ${what} records: publish one`),
  };
}

const DMARC_WORDS: Record<string, string> = {
  none: "p=none: receivers send reports and deliver mail that fails DMARC as they would anyway",
  quarantine: "p=quarantine: receivers put mail that fails DMARC in the spam folder",
  reject: "p=reject: receivers refuse mail that fails DMARC",
};

export async function checkDomain(input: CheckInput): Promise<DomainCheckReport> {
  const { domain } = input;
  const records: RecordCheck[] = [];
  const verdict: string[] = [];

  // SPF for the From domain.
  const spfCheck = await checkSpf("spf", domain, input);
  records.push(spfCheck.check);

  // DKIM: every key whose record should be in DNS.
  const keys = publishedKeys(input.keys);
  const dkimChecks = await Promise.all(keys.map((k) => checkDkim(k, input)));
  records.push(...dkimChecks);
  const visibleKeyIds = keys.filter((_, i) => dkimChecks[i]!.status === "pass").map((k) => k.id);

  // DMARC.
  const dmarc = await getDmarcRecord(domain, mailauthResolver(input.resolver)).catch((error: Error) =>
    ({ error: error.message, isDnsError: true }) as const
  );
  let policy: string | undefined;
  if (dmarc !== false && "error" in dmarc) {
    const error = String(dmarc.error);
    records.push({
      purpose: "dmarc",
      name: `_dmarc.${domain}`,
      required: true,
      status: "fail",
      found: [error],
      detail: `DNS lookup failed: ${error}`,
      fix: "make sure the domain's name servers answer",
    });
  } else if (dmarc === false) {
    records.push({
      purpose: "dmarc",
      name: `_dmarc.${domain}`,
      required: true,
      status: "fail",
      found: [],
      detail: `no DMARC record at _dmarc.${domain} (nor at its organizational domain)`,
      fix: `publish _dmarc.${domain}. TXT ${zoneTxt(`v=DMARC1; p=none; rua=mailto:dmarc@${domain}`)}`,
    });
  } else {
    policy = String(dmarc.p ?? "none").toLowerCase();
    records.push({
      purpose: "dmarc",
      name: `_dmarc.${domain}`,
      required: true,
      status: "pass",
      found: [dmarc.rr],
      detail: `${dmarc.isOrgRecord ? "the organizational domain's record applies: " : ""}policy p=${policy}${
        dmarc.rua ? `, reports to ${dmarc.rua}` : ", no rua= (you get no reports)"
      }`,
    });
  }

  // Return path (RELAY_BOUNCE_DOMAIN).
  let bounceSpf: string | undefined;
  if (input.bounceDomain !== undefined) {
    const mx = await input.resolver.mx(input.bounceDomain);
    const hosts = mx.ok ? mx.answers.map((m) => m.exchange) : [];
    const mxOk = hosts.includes(input.hostname.toLowerCase());
    records.push({
      purpose: "return-path-mx",
      name: input.bounceDomain,
      required: true,
      status: mxOk ? "pass" : "fail",
      found: mx.ok ? mx.answers.map((m) => `${m.preference} ${m.exchange}`) : [mx.error],
      detail: mxOk
        ? `bounces to ${input.bounceDomain} reach ${input.hostname}`
        : `no MX of ${input.bounceDomain} points at ${input.hostname}`,
      fix: mxOk ? undefined : `publish ${input.bounceDomain}. MX 10 ${input.hostname}`,
    });
    const rp = await checkSpf("return-path-spf", input.bounceDomain, input);
    records.push(rp.check);
    bounceSpf = rp.result;
  }

  // Optional records.
  records.push(await checkOptionalTxt("mta-sts", `_mta-sts.${domain}`, /^v=STSv1\b/, input, "MTA-STS"));
  records.push(await checkOptionalTxt("tls-rpt", `_smtp._tls.${domain}`, /^v=TLSRPTv1\b/, input, "TLS-RPT"));

  // What a receiver would conclude.
  const ip = input.sourceIp;
  // The relay rewrites the envelope sender to the bounce domain only when that aligns (ingress/return-path.ts).
  const rewritten = input.bounceDomain !== undefined && sameOrganization(domain, input.bounceDomain);
  const envelopeDomain = rewritten ? input.bounceDomain! : domain;
  const spfResult = rewritten ? bounceSpf : spfCheck.result;
  if (ip === undefined || isIP(ip) === 0) {
    verdict.push(`SPF: cannot tell: RELAY_SOURCE_IP is not set, so which IP receivers see is unknown.`);
  } else {
    verdict.push(
      `SPF: a receiver that gets mail from ${ip} with an envelope sender at ${envelopeDomain} concludes ${
        SPF_WORDS[spfResult ?? "none"] ?? `SPF ${spfResult}`
      }.`,
    );
  }
  const active = dkimChecks.filter((c) => c.keyState === "active");
  if (active.length === 0) {
    verdict.push(`DKIM: the relay holds no active key for ${domain}, so its mail leaves unsigned.`);
  } else {
    for (const c of active) {
      verdict.push(
        c.status === "pass"
          ? `DKIM: mail from @${domain} is signed d=${domain} s=${c.selector} (${c.algorithm}); the receiver finds the same key in DNS: DKIM pass, aligned with the From domain.`
          : `DKIM: mail from @${domain} is signed d=${domain} s=${c.selector} (${c.algorithm}), but the receiver ${
            c.found.length === 0 ? "finds no key" : "finds a different key"
          } at ${c.name}: DKIM fails (treated as unsigned).`,
      );
    }
  }
  const dkimPass = active.some((c) => c.status === "pass");
  const spfAligned = sameOrganization(domain, envelopeDomain);
  if (input.bounceDomain !== undefined) {
    verdict.push(
      rewritten
        ? `Return path: mail from @${domain} leaves with the envelope sender b.<message>.<recipient>.<tag>@${input.bounceDomain} (VERP, tagged with a keyed hash), which shares ${domain}'s organizational domain, so an SPF pass aligns for DMARC (relaxed) and bounces come back to this relay.`
        : `Return path: alignment impossible: the bounce domain ${input.bounceDomain} is not under ${domain}'s organizational domain, so the relay leaves the envelope sender of mail from @${domain} as submitted (SPF above is for ${domain}); configure a bounce domain under the From domain (e.g. bounces.${domain}) to align it.`,
    );
  }
  const spfDmarc = spfResult === "pass" && spfAligned;
  if (policy === undefined) {
    verdict.push(
      `DMARC: no policy: receivers apply their own judgement${
        dkimPass || spfDmarc ? ", helped by the aligned authentication above" : ""
      }.`,
    );
  } else {
    const pass = dkimPass || spfDmarc;
    verdict.push(
      `DMARC: ${
        pass
          ? `pass (${[dkimPass ? "DKIM aligned" : "", spfDmarc ? "SPF aligned" : ""].filter(Boolean).join(" and ")})`
          : "fail (neither DKIM nor SPF passes aligned)"
      }; ${DMARC_WORDS[policy] ?? `p=${policy}`}.`,
    );
  }

  return {
    domain,
    checkedAt: new Date(input.now).toISOString(),
    ok: records.every((r) => !r.required || r.status !== "fail"),
    records,
    verdict,
    visibleKeyIds,
  };
}

/** The report as lines for the command line. */
export function formatReport(report: DomainCheckReport): string[] {
  const lines = [`DNS check of ${report.domain} at ${report.checkedAt}:`];
  for (const r of report.records) {
    const word = r.status === "pass" ? "PASS" : r.status === "fail" ? "FAIL" : "WARN";
    const what = r.purpose === "dkim" ? `DKIM ${r.selector} (${r.algorithm}, ${r.keyState})` : r.purpose.toUpperCase();
    lines.push(`${word} ${what} ${r.name}${r.required ? "" : " (optional)"}: ${r.detail}`);
    if (r.fix) lines.push(`     fix: ${r.fix}`);
  }
  lines.push("", "What a receiver would conclude:");
  for (const v of report.verdict) lines.push(`  ${v}`);
  lines.push(
    "",
    report.ok
      ? "All required records are in place."
      : "Some required records are missing or wrong: see the fixes above.",
  );
  return lines;
}
