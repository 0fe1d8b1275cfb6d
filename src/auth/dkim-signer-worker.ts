import type { KeyObject } from "node:crypto";
import { startWorker, type WorkerPort } from "../platform/worker.ts";
import { DKIM_WORKER_MODULE } from "../worker-modules.ts";
import type { SignRequest, SignResponse } from "./dkim-protocol.ts";
import type { SigningKey } from "./dkim-sign.ts";

type Body = Omit<SignRequest, "id">;

/**
 * DKIM signing on a worker thread, with the same contract as signMessage.
 * Keys travel as PEM (a KeyObject does not cross threads), exported once per
 * key; the worker keeps the parsed key.
 */
export class DkimSignerWorker {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (m: Uint8Array) => void; reject: (e: Error) => void }>();
  private readonly pems = new WeakMap<KeyObject, string>();
  private readonly port: WorkerPort<SignRequest, SignResponse>;

  constructor() {
    this.port = startWorker<SignRequest, SignResponse>(DKIM_WORKER_MODULE);
    this.port.onMessage((response) => {
      const waiter = this.pending.get(response.id);
      if (!waiter) return;
      this.pending.delete(response.id);
      if (response.ok) waiter.resolve(response.message);
      else waiter.reject(new Error(response.error));
    });
    this.port.onError((error) => {
      const failure = new Error(`DKIM worker failed: ${error instanceof Error ? error.message : String(error)}`);
      for (const waiter of this.pending.values()) waiter.reject(failure);
      this.pending.clear();
    });
  }

  sign(message: Uint8Array, keys: readonly SigningKey[], now: number): Promise<Uint8Array> {
    const body: Body = {
      message,
      keys: keys.map((k) => ({
        domain: k.domain,
        selector: k.selector,
        algorithm: k.algorithm,
        pem: this.pem(k.privateKey),
      })),
      now,
    };
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      // The message is copied, not moved: the caller keeps it (it goes unsigned if signing fails).
      this.port.post({ ...body, id });
    });
  }

  private pem(key: KeyObject): string {
    let pem = this.pems.get(key);
    if (pem === undefined) {
      pem = key.export({ format: "pem", type: "pkcs8" }).toString();
      this.pems.set(key, pem);
    }
    return pem;
  }

  close(): void {
    this.port.terminate();
  }
}
