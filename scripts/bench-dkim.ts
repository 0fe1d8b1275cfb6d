/**
 * DKIM signing cost on this machine: messages per second on one core for
 * RSA-2048 and Ed25519, through the signer the relay uses at ingress on one
 * CPU (src/auth/dkim-signers.ts: in this thread, RSA by OpenSSL where it
 * loads; relaxed/relaxed, SHA-256, over-signed headers).
 *
 *   node_modules/.bin/bun scripts/bench-dkim.ts [--messages N] [--size BYTES] [--json]
 *
 * Bounded: N messages per algorithm (default 2,000), after a short warm-up.
 * --json: one JSON line instead of the table (scripts/bench's dkim phase).
 */
import { createPrivateKey } from "node:crypto";
import { parseArgs } from "node:util";
import { type DkimAlgorithm, generateDkimKey } from "../src/auth/dkim-keys.ts";
import type { SigningKey } from "../src/auth/dkim-sign.ts";
import { createDkimSigner } from "../src/auth/dkim-signers.ts";

const { values } = parseArgs({
  options: {
    messages: { type: "string", default: "2000" },
    size: { type: "string", default: "5000" },
    json: { type: "boolean", default: false },
  },
});
const count = Number(values.messages);
const size = Number(values.size);
if (!Number.isInteger(count) || count <= 0 || !Number.isInteger(size) || size < 0) {
  console.error("bench-dkim: --messages and --size take positive integers");
  process.exit(2);
}

const line = "The quick brown fox jumps over the lazy dog, again and again and again.\r\n";
const body = line.repeat(Math.max(1, Math.ceil(size / line.length)));
const message = new TextEncoder().encode(
  "From: Sender <news@sender.test>\r\nTo: someone@dest.test\r\nSubject: benchmark\r\nDate: Mon, 18 May 2026 12:00:00 +0000\r\n" +
    "Message-ID: <bench@sender.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
    body,
);

function key(algorithm: DkimAlgorithm): SigningKey {
  return {
    domain: "sender.test",
    selector: algorithm,
    algorithm,
    privateKey: createPrivateKey(generateDkimKey(algorithm).privateKeyPem),
  };
}

const signer = await createDkimSigner(1);

async function measure(keys: SigningKey[]): Promise<{ perSecond: number; msEach: number }> {
  for (let i = 0; i < Math.min(50, count); i++) await signer.sign(message, keys, Date.now());
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i++) await signer.sign(message, keys, Date.now());
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return { perSecond: count / seconds, msEach: (seconds * 1000) / count };
}

const rsa = key("rsa");
const ed = key("ed25519");
const runtime = process.versions.bun ? `bun ${process.versions.bun}` : `node ${process.version}`;
if (!values.json) console.log(`DKIM signing, one core, ${count} messages of ${message.length} bytes each (${runtime})`);
const rows: { name: string; perSecond: number; msEach: number }[] = [];
for (const [name, keys] of [["RSA-2048", [rsa]], ["Ed25519", [ed]], ["RSA-2048 + Ed25519", [rsa, ed]]] as const) {
  const { perSecond, msEach } = await measure([...keys]);
  rows.push({ name, perSecond, msEach });
  if (!values.json) {
    console.log(`${name.padEnd(20)} ${perSecond.toFixed(0).padStart(8)} messages/s  ${msEach.toFixed(3)} ms each`);
  }
}
signer.close();
if (values.json) console.log(JSON.stringify({ messages: count, bytes: message.length, runtime, rows }));
