import { parseArgs } from "node:util";
import pkg from "../package.json" with { type: "json" };
import { openQueue, startRelay } from "./app.ts";
import { readEnvFile } from "./cli/env-file.ts";
import { COMMAND_USAGE, MAIN_USAGE } from "./cli/usage.ts";
import { loadConfig } from "./config/load.ts";
import { UsageError } from "./core/errors.ts";
import { createLogger } from "./events/log.ts";
import { detectRuntime, type Runtime } from "./platform/runtime.ts";

declare const RELAY_BUILD_VERSION: string | undefined;
const VERSION = typeof RELAY_BUILD_VERSION === "string" ? RELAY_BUILD_VERSION : pkg.version;

/** Exit status (SPEC.md, Command line): 0 success, 1 runtime failure, 2 bad usage or configuration. */
async function main(runtime: Runtime): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...runtime.args],
    options: { help: { type: "boolean", short: "h" }, "env-file": { type: "string" } },
    allowPositionals: true,
    strict: true,
  });
  const command = positionals[0] ?? "serve";
  if (!(command in COMMAND_USAGE)) throw new UsageError([`unknown command ${JSON.stringify(command)}`, "", MAIN_USAGE]);
  if (values.help) {
    console.log(positionals.length === 0 ? MAIN_USAGE : COMMAND_USAGE[command]);
    return 0;
  }
  if (positionals.length > 1) throw new UsageError([`unexpected argument ${JSON.stringify(positionals[1])}`, COMMAND_USAGE[command]!]);
  if (command === "version") {
    console.log(`relay ${VERSION} (${runtime.name} ${runtime.version})`);
    return 0;
  }

  const fileEnv = values["env-file"] ? readEnvFile(values["env-file"]) : {};
  const config = loadConfig({ ...fileEnv, ...runtime.env }, runtime.hostname());
  const log = createLogger(config.logLevel, config.logFormat, (line) => console.error(line));

  if (command === "migrate") {
    const database = await openQueue(config);
    database.close();
    console.log(`relay: database ${config.dbUrl} is up to date`);
    return 0;
  }

  const relay = await startRelay(config, runtime, log);
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = () => {
      if (stopping) return;
      stopping = true;
      log("info", "stopping: no new connections, finishing deliveries");
      void relay.stop().then(resolve, (error) => {
        log("error", "unclean stop", { error: String(error) });
        resolve();
      });
    };
    runtime.onSignal("SIGTERM", stop);
    runtime.onSignal("SIGINT", stop);
  });
  return 0;
}

const runtime = detectRuntime();
main(runtime).then(
  (code) => runtime.exit(code),
  (error) => {
    if (error instanceof UsageError) {
      console.error(error.problems.map((p) => `relay: ${p}`.trimEnd()).join("\n"));
      runtime.exit(2);
    }
    if (error instanceof TypeError && "code" in error && String(error.code).startsWith("ERR_PARSE_ARGS")) {
      console.error(`relay: ${error.message}\n\n${MAIN_USAGE}`);
      runtime.exit(2);
    }
    console.error(`relay: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    runtime.exit(1);
  },
);
