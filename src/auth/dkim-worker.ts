/**
 * The DKIM signing worker: RSA signing costs most of a millisecond per
 * message, so it runs beside the SMTP sessions instead of between them,
 * with OpenSSL's RSA where it can be loaded (about twice as fast as Bun's).
 */
import { createPrivateKey, type KeyObject } from "node:crypto";
import { loadOpenSsl, type OpenSsl, type RsaSha256Signer } from "../platform/openssl.ts";
import { signMessage, type SigningKey } from "./dkim-sign.ts";
import type { SignRequest, SignResponse } from "./dkim-protocol.ts";

declare const self: {
  onmessage: ((event: { data: SignRequest }) => void) | null;
  postMessage(message: SignResponse, transfer?: ArrayBuffer[]): void;
};

/** Loaded while the first request waits; requests are answered in order all the same. */
const openssl = loadOpenSsl();

/** Parsed keys by PEM, each with its OpenSSL signer when there is one. */
const keys = new Map<string, { privateKey: KeyObject; openssl?: RsaSha256Signer }>();

function parsedKey(pem: string, openssl: OpenSsl | undefined): { privateKey: KeyObject; openssl?: RsaSha256Signer } {
  let key = keys.get(pem);
  if (!key) {
    if (keys.size > 1000) {
      for (const old of keys.values()) old.openssl?.free();
      keys.clear();
    }
    const privateKey = createPrivateKey(pem);
    key = { privateKey, openssl: openssl?.rsaSha256(privateKey) };
    keys.set(pem, key);
  }
  return key;
}

self.onmessage = (event) => void openssl.then((loaded) => answer(event.data, loaded));

function answer(request: SignRequest, openssl: OpenSsl | undefined): void {
  try {
    const signing: SigningKey[] = request.keys.map((k) => {
      const { privateKey, openssl: fast } = parsedKey(k.pem, openssl);
      return { domain: k.domain, selector: k.selector, algorithm: k.algorithm, privateKey, rsaSha256: fast && ((data: Uint8Array) => fast.sign(data)) };
    });
    const message = signMessage(request.message, signing, request.now);
    const owned = message.byteOffset === 0 && message.byteLength === message.buffer.byteLength && message.buffer instanceof ArrayBuffer;
    self.postMessage({ id: request.id, ok: true, message }, owned ? [message.buffer as ArrayBuffer] : []);
  } catch (error) {
    self.postMessage({ id: request.id, ok: false, error: error instanceof Error ? error.message : String(error) });
  }
}
