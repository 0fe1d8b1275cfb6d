import { hostname } from "node:os";

/** What the relay needs from the runtime beyond node:* modules: HTTP serving and signals. */
export interface Runtime {
  readonly name: "bun" | "deno";
  readonly version: string;
  serveHttp(options: HttpServeOptions): Promise<HttpServer>;
  onSignal(signal: "SIGTERM" | "SIGINT", handler: () => void): void;
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
  args: string[];
  env: { toObject(): Record<string, string> };
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
    onSignal: (signal, handler) => void process.on(signal, handler),
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
    onSignal: (signal, handler) => Deno.addSignalListener(signal, handler),
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
