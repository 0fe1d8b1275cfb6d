/**
 * Keys, DKIM signatures and ARC sets made in the test, for the inbound
 * authentication tests: node:crypto keys, mailauth's signer.
 */
import { Buffer } from "node:buffer";
import { generateKeyPairSync } from "node:crypto";
import { dkimSign } from "mailauth/lib/dkim/sign.js";
import { sealMessage } from "mailauth/lib/arc/index.js";

export interface TestKey {
  readonly privateKey: string;
  /** The TXT record to publish at selector._domainkey.domain. */
  readonly record: string;
  readonly algorithm: "rsa" | "ed25519";
}

export function rsaKey(bits = 2048): TestKey {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: bits });
  const spki = publicKey.export({ type: "spki", format: "der" }).toString("base64");
  return {
    privateKey: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    record: `v=DKIM1; k=rsa; p=${spki}`,
    algorithm: "rsa",
  };
}

/** RFC 8463: the DNS record carries the raw 32-byte public key. */
export function ed25519Key(): TestKey {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const raw = publicKey.export({ type: "spki", format: "der" }).subarray(-32).toString("base64");
  return {
    privateKey: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    record: `v=DKIM1; k=ed25519; p=${raw}`,
    algorithm: "ed25519",
  };
}

/** The message with a DKIM-Signature on top. */
export async function dkimSigned(
  message: string,
  domain: string,
  selector: string,
  key: TestKey,
  time = new Date(),
): Promise<string> {
  const { signatures, errors } = await dkimSign(message, {
    canonicalization: "relaxed/relaxed",
    signTime: time,
    signatureData: [{
      signingDomain: domain,
      selector,
      privateKey: key.privateKey,
      algorithm: key.algorithm === "rsa" ? "rsa-sha256" : "ed25519-sha256",
    }],
  } as never);
  if (errors?.length) {
    throw new Error(
      `dkimSign: ${JSON.stringify((errors as unknown as { err?: unknown }[]).map((e) => String(e.err)))}`,
    );
  }
  return signatures + message;
}

/** The message with an ARC set on top, as an intermediary at `domain` would add it. */
export async function arcSealed(
  message: string,
  domain: string,
  selector: string,
  key: TestKey,
  authResults: string,
  cv: "none" | "pass" | "fail",
): Promise<string> {
  const headers = await sealMessage(Buffer.from(message), {
    signingDomain: domain,
    selector,
    privateKey: key.privateKey,
    authResults,
    cv,
    signTime: new Date(),
  } as never);
  return headers.toString() + message;
}

/** A plain message from `from`, CRLF line ends. */
export function message(from: string, subject = "hello", body = "Hello there.\r\nSecond line.\r\n"): string {
  return `From: Sender <${from}>\r\nTo: x@bounces.relay.test\r\nSubject: ${subject}\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <${
    subject.replace(/\W/g, "")
  }@test>\r\n\r\n${body}`;
}
