/**
 * The DKIM signing worker: RSA signing costs most of a millisecond per
 * message, so it runs beside the SMTP sessions instead of between them,
 * with OpenSSL's RSA where it can be loaded (about twice as fast as Bun's).
 */
import { createPrivateKey, type KeyObject } from "node:crypto";
import { isSole } from "../core/headroom.ts";
import { loadOpenSsl } from "../platform/openssl.ts";
import type { SignRequest, SignResponse } from "./dkim-protocol.ts";
import { signMessage } from "./dkim-sign.ts";
import { OpenSslKeys } from "./openssl-keys.ts";

declare const self: {
  onmessage: ((event: { data: SignRequest }) => void) | null;
  postMessage(message: SignResponse, transfer?: ArrayBuffer[]): void;
};

/** Parsed keys by PEM (the form keys cross threads in). */
const keys = new Map<string, KeyObject>();

function keyObject(pem: string): KeyObject {
  let key = keys.get(pem);
  if (!key) {
    if (keys.size > 1000) keys.clear();
    key = createPrivateKey(pem);
    keys.set(pem, key);
  }
  return key;
}

/** Loaded while the first request waits; requests are answered in order all the same. */
const openssl = loadOpenSsl().then((loaded) => new OpenSslKeys(loaded));

self.onmessage = (event) => void openssl.then((fast) => answer(event.data, fast));

function answer(request: SignRequest, fast: OpenSslKeys): void {
  try {
    const signing = fast.withSigners(
      request.keys.map((k) => ({
        domain: k.domain,
        selector: k.selector,
        algorithm: k.algorithm,
        privateKey: keyObject(k.pem),
      })),
    );
    const message = signMessage(request.message, signing, request.now);
    const owned = isSole(message) ||
      (message.byteOffset === 0 && message.byteLength === message.buffer.byteLength &&
        message.buffer instanceof ArrayBuffer);
    self.postMessage({ id: request.id, ok: true, message }, owned ? [message.buffer as ArrayBuffer] : []);
  } catch (error) {
    self.postMessage({ id: request.id, ok: false, error: error instanceof Error ? error.message : String(error) });
  }
}
