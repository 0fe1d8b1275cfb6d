import { parseArgs } from "node:util";
import pkg from "../package.json" with { type: "json" };
import type { CommandContext } from "./cli/command.ts";
import { readEnvFile } from "./cli/env-file.ts";
import { COMMANDS, mainUsage } from "./cli/registry.ts";
import { Closers } from "./app/closers.ts";
import { openServices } from "./app/services.ts";
import { type Config, loadConfig } from "./config/load.ts";
import { UsageError } from "./core/errors.ts";
import { createLogger } from "./core/log.ts";
import { restrictNewFiles } from "./platform/private-dir.ts";
import { detectRuntime, type Runtime } from "./platform/runtime.ts";
import { secureDataDir } from "./queue/data-dir.ts";

declare const RELAY_BUILD_VERSION: string | undefined;
const VERSION = typeof RELAY_BUILD_VERSION === "string" ? RELAY_BUILD_VERSION : pkg.version;

const GLOBAL_OPTIONS = { help: { type: "boolean", short: "h" }, "env-file": { type: "string" } } as const;

/** Exit status (SPEC.md, Command line): 0 success, 1 runtime failure, 2 bad usage or configuration. */
async function main(runtime: Runtime): Promise<number> {
  const args = [...runtime.args];
  const first = args.find((a, i) => !a.startsWith("-") && args[i - 1] !== "--env-file");
  const name = first ?? "serve";
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) throw new UsageError([`unknown command ${JSON.stringify(name)}`, "", mainUsage()]);
  if (first !== undefined) args.splice(args.indexOf(first), 1);
  const { values, positionals } = parseArgs({
    args,
    options: { ...GLOBAL_OPTIONS, ...command.options },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    console.log(first === undefined ? mainUsage() : command.usage);
    return 0;
  }
  let config: Config | undefined;
  const loadedConfig = (): Config => {
    if (!config) {
      const file = values["env-file"];
      const fileEnv = typeof file === "string" ? readEnvFile(file) : {};
      config = loadConfig({ ...fileEnv, ...runtime.env }, runtime.hostname());
    }
    return config;
  };
  const logger = (c: Config) => createLogger(c.logLevel, c.logFormat, (line) => console.error(line));
  const context: CommandContext = {
    runtime,
    version: VERSION,
    positionals,
    options: values,
    config: loadedConfig,
    logger,
    async withServices(body) {
      const c = loadedConfig();
      const log = logger(c);
      if (c.dbUrl.startsWith("file:")) secureDataDir(c.dataDir, log);
      const closers = new Closers(log);
      let result: Awaited<ReturnType<typeof body>>;
      try {
        result = await body(await openServices(c, log, closers));
      } catch (error) {
        await closers.closeAll();
        throw error;
      }
      // What the command wrote is safe once the database has closed: a failure there fails the command.
      if (!(await closers.closeAll())) throw new Error("could not close cleanly; the log line above says what failed");
      return result;
    },
    async readStdin() {
      const chunks: Uint8Array[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Uint8Array);
      return Buffer.concat(chunks).toString("utf8");
    },
    print: (line) => console.log(line),
  };
  return command.run(context);
}

const runtime = detectRuntime();
restrictNewFiles();
main(runtime).then(
  (code) => runtime.exit(code),
  (error) => {
    if (error instanceof UsageError) {
      console.error(error.problems.map((p) => `relay: ${p}`.trimEnd()).join("\n"));
      runtime.exit(2);
    }
    if (error instanceof TypeError && "code" in error && String(error.code).startsWith("ERR_PARSE_ARGS")) {
      console.error(`relay: ${error.message}\n\n${mainUsage()}`);
      runtime.exit(2);
    }
    // What failed, in one line; the stack only when asked for (RELAY_LOG_LEVEL=debug).
    const debug = runtime.env.RELAY_LOG_LEVEL === "debug";
    console.error(
      `relay: ${error instanceof Error ? ((debug ? error.stack : undefined) ?? error.message) : String(error)}`,
    );
    runtime.exit(1);
  },
);
