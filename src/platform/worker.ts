/**
 * A module worker (the web Worker API, which Bun and Deno both implement).
 * In the compiled binary the worker's module must be one of the build's
 * entry points (scripts/build.ts lists it).
 */
export interface WorkerPort<In, Out> {
  /** Send a message; the buffers in `transfer` move to the worker instead of being copied. */
  post(message: In, transfer?: ArrayBuffer[]): void;
  onMessage(handler: (message: Out) => void): void;
  onError(handler: (error: unknown) => void): void;
  terminate(): void;
}

export function startWorker<In, Out>(module: URL): WorkerPort<In, Out> {
  const worker = new Worker(module.href, { type: "module" });
  return {
    post: (message, transfer = []) => worker.postMessage(message, transfer),
    onMessage: (handler) => worker.addEventListener("message", (event) => handler((event as MessageEvent<Out>).data)),
    onError: (handler) =>
      worker.addEventListener("error", (event) => {
        const e = event as ErrorEvent;
        handler(e.error ?? new Error(e.message || "worker error"));
      }),
    terminate: () => worker.terminate(),
  };
}
