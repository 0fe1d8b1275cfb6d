import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { NOT_INSTALLED, peerMissing, PYTHON, runPeer } from "./peers.ts";

/**
 * Why dkimpy (Debian python3-dkim) cannot run here, or undefined when it can;
 * `modules` are the Python modules the test needs beside it.
 */
export function dkimpyMissing(modules: readonly string[], packages: string): string | undefined {
  if (!existsSync(PYTHON)) return peerMissing(PYTHON, "python3", NOT_INSTALLED);
  const probe = spawnSync(PYTHON, ["-c", `import ${modules.join(", ")}`], { stdio: "ignore" });
  return peerMissing(`${PYTHON} modules ${modules.join(", ")}`, packages, probe.status !== 0 && "are not importable");
}

/**
 * Python prelude: `dnsfunc` for dkimpy that reads TXT records from the test
 * DNS fixture, whose port is the script's first argument.
 */
export const FIXTURE_DNSFUNC = `
import sys, json, dkim, dns.resolver
r = dns.resolver.Resolver(configure=False)
r.nameservers = ['127.0.0.1']
r.port = int(sys.argv[1])
def dnsfunc(name, timeout=5):
    try:
        answer = r.resolve(name.decode() if isinstance(name, bytes) else name, 'TXT', lifetime=timeout)
    except Exception:
        return None
    return b''.join(answer[0].strings)
`;

/** Keys looked up by dkimpy in a batch: DNS name (no final dot) -> TXT text. */
export type KeyZone = Readonly<Record<string, string>>;

const BATCH_PRELUDE = `
import sys, json, base64, dkim
request = json.load(sys.stdin)
zone = {k.lower(): v.encode() for k, v in request['zone'].items()}
def dnsfunc(name, timeout=5):
    name = name.decode() if isinstance(name, bytes) else name
    return zone.get(name.rstrip('.').lower())
`;

/** Each message's DKIM-Signatures, top to bottom: true (verified), false, or the error dkimpy raised. */
const BATCH_VERIFY = `${BATCH_PRELUDE}
out = []
for encoded in request['messages']:
    message = base64.b64decode(encoded)
    count = sum(1 for name, _ in dkim.DKIM(message).headers if name.lower() == b'dkim-signature')
    verdicts = []
    for i in range(count):
        try:
            verdicts.append(bool(dkim.DKIM(message).verify(idx=i, dnsfunc=dnsfunc)))
        except Exception as e:
            verdicts.append('%s: %s' % (type(e).__name__, e))
    out.append(verdicts)
print(json.dumps(out))
`;

/**
 * dkimpy's verdict on every DKIM-Signature of each message, all messages in
 * one Python process, keys from `zone`.
 */
export async function dkimpyVerifyAll(messages: readonly Uint8Array[], zone: KeyZone): Promise<(boolean | string)[][]> {
  const input = JSON.stringify({ zone, messages: messages.map((m) => Buffer.from(m).toString("base64")) });
  const result = await runPeer(PYTHON, ["-c", BATCH_VERIFY], { input, timeoutMs: 300_000 });
  if (result.code !== 0) throw new Error(`dkimpy verify failed (${result.code}): ${result.stderr}`);
  return JSON.parse(result.stdout);
}

export interface DkimpySignRequest {
  readonly message: Uint8Array;
  readonly domain: string;
  readonly selector: string;
  /** RSA: PKCS#1 PEM; Ed25519: the base64 of the 32-octet private key. */
  readonly privateKey: string;
  readonly algorithm: "rsa-sha256" | "ed25519-sha256";
  readonly canonicalization: "relaxed/relaxed" | "simple/simple" | "relaxed/simple" | "simple/relaxed";
  /** h=, lower case. */
  readonly headers: readonly string[];
}

const BATCH_SIGN = `${BATCH_PRELUDE}
out = []
for r in request['sign']:
    message = base64.b64decode(r['message'])
    header, body = r['canonicalization'].encode().split(b'/')
    field = dkim.sign(message, r['selector'].encode(), r['domain'].encode(), r['privateKey'].encode(),
        canonicalize=(header, body), signature_algorithm=r['algorithm'].encode(),
        include_headers=[h.encode() for h in r['headers']])
    out.append(base64.b64encode(field + message).decode())
print(json.dumps(out))
`;

/** The messages signed by dkimpy (its DKIM-Signature on top of each), all in one Python process. */
export async function dkimpySignAll(requests: readonly DkimpySignRequest[]): Promise<Uint8Array[]> {
  const input = JSON.stringify({
    zone: {},
    sign: requests.map((r) => ({ ...r, message: Buffer.from(r.message).toString("base64") })),
  });
  const result = await runPeer(PYTHON, ["-c", BATCH_SIGN], { input, timeoutMs: 300_000 });
  if (result.code !== 0) throw new Error(`dkimpy sign failed (${result.code}): ${result.stderr}`);
  return (JSON.parse(result.stdout) as string[]).map((m) => new Uint8Array(Buffer.from(m, "base64")));
}

const BATCH_ARC_VERIFY = `${BATCH_PRELUDE}
out = []
for encoded in request['messages']:
    try:
        cv, results, comment = dkim.arc_verify(base64.b64decode(encoded), dnsfunc=dnsfunc)
        out.append({'cv': cv.decode() if isinstance(cv, bytes) else cv, 'comment': str(comment)})
    except Exception as e:
        out.append({'cv': 'error', 'comment': '%s: %s' % (type(e).__name__, e)})
print(json.dumps(out))
`;

/** dkimpy's arc_verify of each message, all in one Python process: the chain's cv ("pass", "fail", "none") and why. */
export async function dkimpyArcVerifyAll(
  messages: readonly Uint8Array[],
  zone: KeyZone,
): Promise<{ cv: string; comment: string }[]> {
  const input = JSON.stringify({ zone, messages: messages.map((m) => Buffer.from(m).toString("base64")) });
  const result = await runPeer(PYTHON, ["-c", BATCH_ARC_VERIFY], { input, timeoutMs: 300_000 });
  if (result.code !== 0) throw new Error(`dkimpy arc_verify failed (${result.code}): ${result.stderr}`);
  return JSON.parse(result.stdout);
}

const BATCH_ARC_SIGN = `${BATCH_PRELUDE}
out = []
for r in request['sign']:
    message = base64.b64decode(r['message'])
    fields = dkim.arc_sign(message, r['selector'].encode(), r['domain'].encode(), r['privateKey'].encode(), r['authservId'].encode(),
        include_headers=[h.encode() for h in r['headers']])
    out.append(base64.b64encode(b''.join(fields) + message).decode())
print(json.dumps(out))
`;

/**
 * The messages with a first ARC set (i=1) added by dkimpy's arc_sign, all in
 * one Python process; each message needs an Authentication-Results field of
 * `authservId`.
 */
export async function dkimpyArcSignAll(
  requests: readonly {
    message: Uint8Array;
    domain: string;
    selector: string;
    privateKey: string;
    authservId: string;
    headers: readonly string[];
  }[],
): Promise<Uint8Array[]> {
  const input = JSON.stringify({
    zone: {},
    sign: requests.map((r) => ({ ...r, message: Buffer.from(r.message).toString("base64") })),
  });
  const result = await runPeer(PYTHON, ["-c", BATCH_ARC_SIGN], { input, timeoutMs: 300_000 });
  if (result.code !== 0) throw new Error(`dkimpy arc_sign failed (${result.code}): ${result.stderr}`);
  return (JSON.parse(result.stdout) as string[]).map((m) => new Uint8Array(Buffer.from(m, "base64")));
}
