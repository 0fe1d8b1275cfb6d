/**
 * Running the relay for a benchmark on loopback: its command (dist/relay
 * when built, else the source under this runtime), a free port, whether a
 * port accepts connections, and `relay serve` on a data directory until it
 * answers /readyz.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { connect, createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** How to run `relay ARGS`: the program and its arguments. */
export type RelayCommand = (args: string[]) => { file: string; argv: string[] };

/** How to run `relay ARGS`: the binary given, dist/relay when built, else src/main.ts. */
export function relayCommand(binary?: string): RelayCommand {
  const file = binary ?? (existsSync(join(ROOT, "dist/relay")) ? join(ROOT, "dist/relay") : undefined);
  return (args: string[]) =>
    file ? { file, argv: args } : { file: process.execPath, argv: [join(ROOT, "src/main.ts"), ...args] };
}

export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  server.close();
  return port;
}

/** Whether something accepts TCP connections on 127.0.0.1:port now. */
export function canConnect(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.setTimeout(2_000);
    socket.once("connect", () => {
      socket.destroy();
      done(true);
    });
    socket.once("timeout", () => {
      socket.destroy();
      done(false);
    });
    socket.once("error", () => done(false));
  });
}

/**
 * `relay serve` with `env` on free loopback ports, every domain routed to a
 * port nobody listens on; resolves once /readyz answers.
 */
export async function serveRelay(
  command: RelayCommand,
  env: NodeJS.ProcessEnv,
  cwd?: string,
): Promise<{ url: string; pid: number; stop: () => Promise<void> }> {
  const [http, smtp] = [await freePort(), await freePort()];
  const { file, argv } = command(["serve"]);
  const child = spawn(file, argv, {
    cwd,
    env: {
      ...env,
      RELAY_HTTP_LISTEN: `127.0.0.1:${http}`,
      RELAY_SMTP_LISTEN: `127.0.0.1:${smtp}`,
      RELAY_ROUTES: `*=127.0.0.1:${await freePort()}`,
      RELAY_SENDER_POLICY: "any",
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const url = `http://127.0.0.1:${http}`;
  for (let i = 0; i < 600; i++) {
    const ok = await fetch(`${url}/readyz`).then((r) => r.ok, () => false);
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    pid: child.pid!,
    async stop() {
      child.kill("SIGTERM");
      await once(child, "exit");
    },
  };
}
