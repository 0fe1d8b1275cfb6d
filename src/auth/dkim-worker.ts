/**
 * The DKIM signing worker: RSA signing costs most of a millisecond per
 * message, so it runs beside the SMTP sessions instead of between them.
 */
import { createPrivateKey, type KeyObject } from "node:crypto";
import { signMessage, type SigningKey } from "./dkim-sign.ts";
import type { SignRequest, SignResponse } from "./dkim-protocol.ts";

declare const self: {
  onmessage: ((event: { data: SignRequest }) => void) | null;
  postMessage(message: SignResponse, transfer?: ArrayBuffer[]): void;
};

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

self.onmessage = (event) => {
  const request = event.data;
  try {
    const signing: SigningKey[] = request.keys.map((k) => ({ domain: k.domain, selector: k.selector, algorithm: k.algorithm, privateKey: keyObject(k.pem) }));
    const message = signMessage(request.message, signing, request.now);
    const owned = message.byteOffset === 0 && message.byteLength === message.buffer.byteLength && message.buffer instanceof ArrayBuffer;
    self.postMessage({ id: request.id, ok: true, message }, owned ? [message.buffer as ArrayBuffer] : []);
  } catch (error) {
    self.postMessage({ id: request.id, ok: false, error: error instanceof Error ? error.message : String(error) });
  }
};
