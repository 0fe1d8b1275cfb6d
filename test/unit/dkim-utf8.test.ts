/**
 * DKIM and ARC on raw UTF-8 header fields (RFC 6532), property-based, with
 * dkimpy (Debian python3-dkim) as the independent side: header values drawn
 * from the whole of UTF-8, weighted towards characters whose encoding holds
 * the octets 0xA0 or 0x85 (which JavaScript's `\s` takes for whitespace when
 * the octets are read as latin1), with VT and FF (not WSP: they must
 * survive), tabs, runs of spaces and folding; bodies likewise.
 *
 * Each property draws its messages with fast-check (FC_SEED=n repeats a
 * run; the seed is in every failure) and has them all signed or verified
 * by one Python process; a failure shows the first messages that failed.
 */
import assert from "node:assert/strict";
import { createPrivateKey, generateKeyPairSync } from "node:crypto";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { generateDkimKey } from "../../src/auth/dkim-keys.ts";
import { type SigningKey, signMessage } from "../../src/auth/dkim-sign.ts";
import { arcSeal, checkInbound, type InboundResults } from "../../src/auth/inbound/index.ts";
import { createDnsClient } from "../../src/dns/client.ts";
import { createResolver, type Resolver } from "../../src/dns/resolver.ts";
import { type DnsServer, startDnsServer } from "../fixtures/dns-server.ts";
import {
  dkimpyArcSignAll,
  dkimpyArcVerifyAll,
  dkimpyMissing,
  dkimpySignAll,
  type DkimpySignRequest,
  dkimpyVerifyAll,
} from "../helpers/dkimpy.ts";

const dkimpyUnavailable = dkimpyMissing(["dkim", "nacl"], "python3-dkim python3-nacl");
/** dkimpy's arc_sign needs authres. */
const authresMissing = dkimpyUnavailable ?? dkimpyMissing(["dkim", "authres"], "python3-dkim python3-authres");

/** Messages a property: enough to meet every kind of character many times, few enough for CI. */
const SAMPLES = 200;

// ------------------------------------------------------------- generators

/** A character whose UTF-8 form holds `octet` (0x80-0xBF) as a continuation octet: 2, 3 or 4 octets long. */
function holding(octet: number): fc.Arbitrary<string> {
  const low = octet & 0x3f;
  const cont = fc.integer({ min: 0x80, max: 0xbf }).map((c) => c & 0x3f);
  return fc.oneof(
    fc.integer({ min: 0xc2, max: 0xdf }).map((lead) => String.fromCodePoint(((lead & 0x1f) << 6) | low)),
    // E1-EC and EE-EF: any continuations (E0 and ED have narrower ranges).
    fc
      .tuple(fc.integer({ min: 0xe1, max: 0xef }).filter((l) => l !== 0xed), cont, fc.boolean())
      .map(([lead, other, first]) =>
        String.fromCodePoint(((lead & 0x0f) << 12) | ((first ? low : other) << 6) | (first ? other : low))
      ),
    fc
      .tuple(fc.integer({ min: 0xf1, max: 0xf3 }), cont, cont, fc.integer({ min: 0, max: 2 }))
      .map(([lead, a, b, at]) => {
        const c = [a, b, low];
        [c[at], c[2]] = [c[2]!, c[at]!];
        return String.fromCodePoint(((lead & 0x07) << 18) | (c[0]! << 12) | (c[1]! << 6) | c[2]!);
      }),
  );
}

/** Any Unicode scalar value (no surrogates) from U+0080 up, as UTF-8 in a string. */
const anyNonAscii = fc
  .oneof(fc.integer({ min: 0x80, max: 0xd7ff }), fc.integer({ min: 0xe000, max: 0x10ffff }))
  .map((cp) => String.fromCodePoint(cp));

/** Something that is not whitespace to anyone: printable ASCII or a non-ASCII character. */
const visible = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)) },
  { weight: 3, arbitrary: holding(0xa0) },
  { weight: 2, arbitrary: holding(0x85) },
  { weight: 1, arbitrary: fc.constantFrom("à", "Р", "Π", "Å", "х", "\u00a0", "\u0085", "蠀", "砅") },
  { weight: 2, arbitrary: anyNonAscii },
);
const wspRun = fc.stringMatching(/^[ \t]{1,4}$/);
/** VT and FF are not WSP (RFC 5234): inside a value they stay as they are. */
const control = fc.constantFrom("\x0b", "\x0c");
const fold = wspRun.map((w) => `\r\n${w}`);

/**
 * A header field value: optional leading and trailing WSP around a core that
 * starts and ends with a visible character. (dkimpy strips VT and FF at the
 * very ends of a value like WSP, Python's bytes.strip(), where RFC 6376 3.4.2
 * keeps them; test/unit/dkim-canon.test.ts checks that edge by hand.)
 */
const headerValue = fc
  .tuple(
    fc.option(wspRun, { nil: "" }),
    visible,
    fc.array(
      fc.oneof({ weight: 4, arbitrary: visible }, { weight: 2, arbitrary: wspRun }, { weight: 1, arbitrary: fold }, {
        weight: 1,
        arbitrary: control,
      }),
      { maxLength: 24 },
    ),
    visible,
    fc.option(wspRun, { nil: "" }),
  )
  .map(([lead, first, middle, last, trail]) => lead + first + middle.join("") + last + trail);

const FIELD_NAMES = [
  "Subject",
  "To",
  "Cc",
  "Reply-To",
  "List-Unsubscribe",
  "Content-Type",
  "Date",
  "Message-ID",
  "X-Note",
] as const;

/** A body line: anything but line breaks, leading, trailing and inner WSP runs included. */
const bodyLine = fc.array(fc.oneof(visible, wspRun, control), { maxLength: 16 }).map((parts) => parts.join(""));
const body = fc
  .tuple(fc.array(bodyLine, { maxLength: 8 }), fc.array(fc.oneof(fc.constant(""), wspRun), { maxLength: 3 }))
  .map(([lines, trailing]) => [...lines, ...trailing].map((l) => `${l}\r\n`).join(""));

interface Sample {
  readonly fields: readonly (readonly [string, string])[];
  readonly body: string;
}

const sample: fc.Arbitrary<Sample> = fc.record({
  fields: fc.array(fc.tuple(fc.constantFrom(...FIELD_NAMES), headerValue), { minLength: 1, maxLength: 6 }),
  body,
});

/** h= for dkimpy: From and every field of the sample, each instance (a name listed once signs only its bottom instance). */
const signedNames = (s: Sample) => ["from", ...s.fields.map(([name]) => name.toLowerCase())];

const encoder = new TextEncoder();
function messageOf(s: Sample, extra = ""): Uint8Array {
  const head = s.fields.map(([name, value]) => `${name}:${value}\r\n`).join("");
  return encoder.encode(`${extra}From: Ann <a@sender.test>\r\n${head}\r\n${s.body}`);
}

/** The header section, escaped, for a failure message. */
function shown(message: Uint8Array): string {
  const text = Buffer.from(message).toString("latin1");
  return JSON.stringify(text.slice(0, text.indexOf("\r\n\r\n") + 2));
}

const seed = process.env.FC_SEED ? Number(process.env.FC_SEED) : Math.floor(Math.random() * 2 ** 31);
/** SAMPLES messages drawn from `arbitrary`, the same ones for the same seed. */
const draw = <T>(arbitrary: fc.Arbitrary<T>): T[] => fc.sample(arbitrary, { numRuns: SAMPLES, seed });
/** Fails with the first few problems and how to repeat the run. */
function noProblems(problems: readonly string[], of: number): void {
  assert.deepEqual(problems.slice(0, 3), [], `${problems.length} problems in ${of} messages (FC_SEED=${seed})`);
}

// ------------------------------------------------------------- keys

function keyPair(algorithm: "rsa" | "ed25519", selector: string) {
  const generated = generateDkimKey(algorithm);
  const key: SigningKey = {
    domain: "sender.test",
    selector,
    algorithm,
    privateKey: createPrivateKey(generated.privateKeyPem),
  };
  return { key, record: `v=DKIM1; k=${algorithm}; p=${generated.publicKey}` };
}

describe("DKIM on raw UTF-8 header fields (RFC 6532), against dkimpy", { skip: dkimpyUnavailable }, () => {
  const rsa = keyPair("rsa", "r1");
  const ed = keyPair("ed25519", "e1");
  const zone = { "r1._domainkey.sender.test": rsa.record, "e1._domainkey.sender.test": ed.record };

  it("what the relay signs (RSA-2048 and Ed25519), dkimpy verifies", { timeout: 120_000 }, async () => {
    const signed = await Promise.all(draw(sample).map((s) => signMessage(messageOf(s), [rsa.key, ed.key], Date.now())));
    const verdicts = await dkimpyVerifyAll(signed, zone);
    const problems = verdicts.flatMap((
      v,
      i,
    ) => (v.length === 2 && v.every((x) => x === true) ? [] : [`${JSON.stringify(v)} ${shown(signed[i]!)}`]));
    noProblems(problems, signed.length);
  });
});

// Inbound: signed by dkimpy, verified by the relay's checks, with keys served by the DNS fixture.

describe("inbound DKIM and ARC on raw UTF-8 header fields, signed by dkimpy", { skip: dkimpyUnavailable }, () => {
  let dns: DnsServer;
  let resolver: Resolver;
  const rsaPair = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const edPair = generateKeyPairSync("ed25519");
  const rsaPem = rsaPair.privateKey.export({ type: "pkcs1", format: "pem" }).toString();
  const edSeed = edPair.privateKey.export({ type: "pkcs8", format: "der" }).subarray(-32).toString("base64");
  const rsaRecord = `v=DKIM1; k=rsa; p=${rsaPair.publicKey.export({ type: "spki", format: "der" }).toString("base64")}`;
  const edRecord = `v=DKIM1; k=ed25519; p=${
    edPair.publicKey.export({ type: "spki", format: "der" }).subarray(-32).toString("base64")
  }`;

  before(async () => {
    dns = await startDnsServer({
      "rsa._domainkey.sender.test": { TXT: [rsaRecord] },
      "ed._domainkey.sender.test": { TXT: [edRecord] },
      "arc._domainkey.fwd.test": { TXT: [rsaRecord] },
      "arc._domainkey.relay.test": { TXT: [rsaRecord] },
    });
    resolver = createResolver(createDnsClient({ servers: [dns], attempts: 1 }));
  });
  after(() => dns.close());

  const clock = { now: () => Date.now() };
  const check = (message: Uint8Array): Promise<InboundResults> =>
    checkInbound({
      message,
      clientIp: "192.0.2.10",
      heloName: "client.example",
      mailFrom: "a@sender.test",
      hostname: "relay.test",
    }, { resolver, clock });

  const KINDS = [
    { selector: "rsa", privateKey: rsaPem, algorithm: "rsa-sha256", canonicalization: "relaxed/relaxed" },
    { selector: "ed", privateKey: edSeed, algorithm: "ed25519-sha256", canonicalization: "relaxed/relaxed" },
    { selector: "rsa", privateKey: rsaPem, algorithm: "rsa-sha256", canonicalization: "simple/simple" },
    { selector: "ed", privateKey: edSeed, algorithm: "ed25519-sha256", canonicalization: "relaxed/simple" },
  ] as const;

  /** The first 0xA0 octet of the header section turned into a space: what mailauth's canonicalization could not tell apart. */
  function spaced(message: Uint8Array): Uint8Array | undefined {
    const end = Buffer.from(message).indexOf("\r\n\r\n");
    const at = message.subarray(0, end).indexOf(0xa0);
    if (at < 0) return undefined;
    const copy = new Uint8Array(message);
    copy[at] = 0x20;
    return copy;
  }

  it(
    "what dkimpy signs (RSA and Ed25519, relaxed and simple) passes; with an 0xA0 octet turned into a space it fails",
    { timeout: 120_000 },
    async () => {
      const requests: DkimpySignRequest[] = draw(fc.tuple(sample, fc.constantFrom(...KINDS))).map(([s, kind]) => ({
        ...kind,
        message: messageOf(s),
        domain: "sender.test",
        headers: signedNames(s),
      }));
      const signed = await dkimpySignAll(requests);
      const problems: string[] = [];
      let tamperedCount = 0;
      for (const [i, message] of signed.entries()) {
        const r = await check(message);
        const kind = `${requests[i]!.algorithm} ${requests[i]!.canonicalization}`;
        if (r.dkim.length !== 1 || r.dkim[0]!.result !== "pass") {
          problems.push(`${kind}: ${JSON.stringify(r.dkim)} ${shown(message)}`);
        }
        const tampered = spaced(message);
        if (tampered) {
          tamperedCount++;
          const t = await check(tampered);
          if (t.dkim[0]!.result !== "fail") {
            problems.push(`${kind}, 0xA0 made a space: ${t.dkim[0]!.result} ${shown(tampered)}`);
          }
        }
      }
      noProblems(problems, signed.length + tamperedCount);
      assert.ok(tamperedCount > SAMPLES / 2, `most messages carry an 0xA0 octet in a header field (${tamperedCount})`);
    },
  );

  it("an ARC set added by dkimpy passes; an ARC set added by the relay passes dkimpy's arc_verify", {
    skip: authresMissing,
    timeout: 120_000,
  }, async () => {
    // Half as many: dkimpy signs RSA in Python, the slowest step of the file.
    const samples = draw(sample).slice(0, SAMPLES / 2);
    const withResults = samples.map((s) =>
      messageOf(s, "Authentication-Results: fwd.test; spf=pass smtp.mailfrom=sender.test\r\n")
    );
    const theirs = await dkimpyArcSignAll(
      samples.map((s, i) => ({
        message: withResults[i]!,
        domain: "fwd.test",
        selector: "arc",
        privateKey: rsaPem,
        authservId: "fwd.test",
        headers: signedNames(s),
      })),
    );
    const problems: string[] = [];
    for (const message of theirs) {
      const r = await check(message);
      if (r.arc.result !== "pass") problems.push(`dkimpy's set: ${JSON.stringify(r.arc)} ${shown(message)}`);
    }
    const key = { domain: "relay.test", selector: "arc", privateKey: rsaPem };
    const ours = await Promise.all(
      withResults.map(async (message) => {
        const fields = await arcSeal(
          message,
          { authResults: "relay.test; spf=pass smtp.mailfrom=sender.test", cv: "none" },
          key,
          { clock },
        );
        return new Uint8Array(Buffer.concat([Buffer.from(fields.map((f) => `${f}\r\n`).join(""), "utf8"), message]));
      }),
    );
    const verdicts = await dkimpyArcVerifyAll(ours, { "arc._domainkey.relay.test": rsaRecord });
    verdicts.forEach((v, i) => {
      if (v.cv !== "pass") problems.push(`our set: ${JSON.stringify(v)} ${shown(ours[i]!)}`);
    });
    noProblems(problems, 2 * samples.length);
  });
});
