import { hostname } from "node:os";
import { bunLibc, bunTryLock, denoTryLock, type FileLock } from "./file-lock.ts";

/** What the relay needs from the runtime beyond node:* modules: HTTP serving, an HTTPS client, signals, file locks. */
export interface Runtime {
  readonly name: "bun" | "deno";
  readonly version: string;
  serveHttp(options: HttpServeOptions): Promise<HttpServer>;
  /** POST over HTTPS with fetch; the server's certificate is verified, against `ca` when given. Resolves with the status. */
  postHttps(request: HttpsPost): Promise<number>;
  onSignal(signal: "SIGTERM" | "SIGINT", handler: () => void): void;
  /**
   * Take an exclusive lock on `path` (made 0600 if absent) that the kernel
   * releases when the process dies, and write `content` into the file;
   * undefined when another process holds it (src/platform/file-lock.ts).
   */
  tryLockFile(path: string, content: string): Promise<FileLock | undefined>;
  /**
   * Set a variable in the process's C environment, where native libraries
   * read it (Bun's process.env is the script's own copy).
   */
  setNativeEnv(name: string, value: string): Promise<void>;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  hostname(): string;
  exit(code: number): never;
}

export interface HttpServeOptions {
  readonly host: string;
  readonly port: number;
  readonly fetch: (request: Request) => Response | Promise<Response>;
}

export interface HttpsPost {
  readonly url: string;
  readonly body: Uint8Array;
  readonly headers: Readonly<Record<string, string>>;
  /** Trust anchors instead of the runtime's roots (the bundled roots plus RELAY_TLS_CA_FILE). */
  readonly ca?: readonly string[];
  readonly timeoutMs: number;
  /** Aborts the request (shutdown). */
  readonly signal?: AbortSignal;
}

/** What both runtimes' fetch takes beyond the standard: redirects are answers, not followed. */
function postInit(request: HttpsPost): RequestInit {
  const deadline = AbortSignal.timeout(request.timeoutMs);
  return {
    method: "POST",
    // fetch takes a view of an ArrayBuffer, never of a SharedArrayBuffer (Deno's lib types say so; Bun's do not).
    body: new Uint8Array(request.body),
    headers: { ...request.headers },
    redirect: "manual",
    signal: request.signal ? AbortSignal.any([request.signal, deadline]) : deadline,
  };
}

export interface HttpServer {
  readonly port: number;
  stop(): Promise<void>;
}

declare const Bun: {
  version: string;
  serve(options: { hostname: string; port: number; fetch: HttpServeOptions["fetch"]; idleTimeout?: number }): {
    port: number;
    stop(closeActive?: boolean): Promise<void>;
  };
  argv: string[];
  env: Record<string, string | undefined>;
};

declare const Deno: {
  version: { deno: string };
  serve(
    options: { hostname: string; port: number; onListen?: (addr: { port: number }) => void },
    handler: HttpServeOptions["fetch"],
  ): { addr: { port: number }; shutdown(): Promise<void> };
  addSignalListener(signal: string, handler: () => void): void;
  createHttpClient(options: { caCerts?: string[] }): { close(): void };
  args: string[];
  env: { toObject(): Record<string, string>; set(name: string, value: string): void };
  exit(code: number): never;
};

function bunRuntime(): Runtime {
  return {
    name: "bun",
    version: Bun.version,
    async serveHttp({ host, port, fetch }) {
      const server = Bun.serve({ hostname: host, port, fetch, idleTimeout: 60 });
      return { port: server.port, stop: () => server.stop(true) };
    },
    async postHttps(request) {
      // Bun's fetch takes node:tls-style options under `tls`.
      const tls = request.ca === undefined ? {} : { tls: { ca: [...request.ca] } };
      const response = await fetch(request.url, { ...postInit(request), ...tls } as RequestInit);
      await response.body?.cancel();
      return response.status;
    },
    onSignal: (signal, handler) => void process.on(signal, handler),
    tryLockFile: bunTryLock,
    async setNativeEnv(name, value) {
      if ((await bunLibc()).setenv(name, value) !== 0) throw new Error(`cannot set ${name} in the environment`);
    },
    // Bun.argv is [bun, script, ...] from source and [binary, ...] when compiled
    // (where the first two are the binary and a virtual path).
    args: process.argv.slice(2),
    env: process.env,
    hostname,
    exit: (code) => process.exit(code),
  };
}

function denoRuntime(): Runtime {
  return {
    name: "deno",
    version: Deno.version.deno,
    serveHttp({ host, port, fetch }) {
      return new Promise((resolve) => {
        const server = Deno.serve(
          { hostname: host, port, onListen: (addr) => resolve({ port: addr.port, stop: () => server.shutdown() }) },
          fetch,
        );
      });
    },
    async postHttps(request) {
      // Deno's fetch takes extra roots through an HTTP client of its own.
      const client = request.ca === undefined ? undefined : Deno.createHttpClient({ caCerts: [...request.ca] });
      try {
        const response = await fetch(
          request.url,
          { ...postInit(request), ...(client ? { client } : {}) } as RequestInit,
        );
        await response.body?.cancel();
        return response.status;
      } finally {
        client?.close();
      }
    },
    onSignal: (signal, handler) => Deno.addSignalListener(signal, handler),
    tryLockFile: async (path, content) => denoTryLock(path, content),
    setNativeEnv: async (name, value) => Deno.env.set(name, value),
    args: Deno.args,
    env: Deno.env.toObject(),
    hostname,
    exit: (code) => Deno.exit(code),
  };
}

export function detectRuntime(): Runtime {
  if (typeof (globalThis as { Deno?: unknown }).Deno !== "undefined") return denoRuntime();
  if (typeof (globalThis as { Bun?: unknown }).Bun !== "undefined") return bunRuntime();
  throw new Error("relay runs on Bun or Deno");
}
