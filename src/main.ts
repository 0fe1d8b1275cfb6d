import { parseArgs } from "node:util";
import pkg from "../package.json" with { type: "json" };
import { type BuildInfo, SOURCE_TARGET } from "./cli/build-info.ts";
import type { Command, CommandContext } from "./cli/command.ts";
import { readEnvFile } from "./cli/env-file.ts";
import { COMMANDS, mainUsage } from "./cli/registry.ts";
import { Closers } from "./app/closers.ts";
import { type Config, loadConfig } from "./config/load.ts";
import { UsageError } from "./core/errors.ts";
import { createLogger, type Logger } from "./core/log.ts";
import { unknownVariables } from "./config/unknown-variables.ts";
import { restrictNewFiles } from "./platform/private-dir.ts";
import { detectRuntime, type Runtime } from "./platform/runtime.ts";
import { secureDataDir } from "./queue/data-dir.ts";

/** Compiled in by scripts/build.ts; absent when running from source. */
declare const RELAY_BUILD: BuildInfo | undefined;
const BUILD: BuildInfo = typeof RELAY_BUILD === "object"
  ? RELAY_BUILD
  : { version: pkg.version, commit: null, target: SOURCE_TARGET, buildDate: null };

const GLOBAL_OPTIONS = { help: { type: "boolean", short: "h" }, "env-file": { type: "string" } } as const;

/** Exit status (SPEC.md, Command line): 0 success, 1 runtime failure, 2 bad usage or configuration. */
async function main(runtime: Runtime): Promise<number> {
  const args = [...runtime.args];
  const first = args.find((a, i) => !a.startsWith("-") && args[i - 1] !== "--env-file");
  if (first !== undefined) args.splice(args.indexOf(first), 1);
  if (first === "help") return help(args);
  const name = first ?? "serve";
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) throw new UsageError([`unknown command ${JSON.stringify(name)}`], mainUsage());
  const { values, positionals } = parseCommandLine(args, command);
  if (values.help) {
    console.log(first === undefined ? mainUsage() : command.usage);
    return 0;
  }
  if (positionals.length > 0 && !command.takesArguments) {
    throw new UsageError([
      `${command.name}: unexpected argument ${JSON.stringify(positionals[0])}; see "relay ${command.name} --help"`,
    ]);
  }
  let config: Config | undefined;
  const loadedConfig = (): Config => {
    if (!config) {
      const file = values["env-file"];
      const fileEnv = typeof file === "string" ? readEnvFile(file) : {};
      const env = { ...fileEnv, ...runtime.env };
      config = loadConfig(env, runtime.hostname());
      warnUnknownVariables(env, logger(config));
    }
    return config;
  };
  const logger = (c: Config) => createLogger(c.logLevel, c.logFormat, (line) => console.error(line));
  const context: CommandContext = {
    runtime,
    version: BUILD.version,
    build: BUILD,
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
        // Loaded when a command asks for them, so that version, help and the HTTP-only commands start quickly.
        const { openServices } = await import("./app/services.ts");
        result = await body(await openServices(c, BUILD.version, log, closers));
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

/** A RELAY_* variable the relay does not read is most likely a typo: said at every start, with the likely name. */
function warnUnknownVariables(env: Record<string, string | undefined>, log: Logger): void {
  for (const { name, closest } of unknownVariables(env)) {
    const guess = closest ? `; did you mean ${closest}?` : "";
    log("warn", `unknown variable ${name} is ignored${guess}`, { variable: name, ...(closest ? { closest } : {}) });
  }
}

/** `relay help [COMMAND]`: the overview, or one command's usage. */
function help(args: readonly string[]): number {
  const topic = args.find((a) => !a.startsWith("-"));
  if (topic === undefined) {
    console.log(mainUsage());
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === topic);
  if (!command) throw new UsageError([`help: unknown command ${JSON.stringify(topic)}`], mainUsage());
  console.log(command.usage);
  return 0;
}

/** The command's options and operands; an unknown or malformed option is a usage error that shows its usage. */
function parseCommandLine(args: string[], command: Command) {
  try {
    return parseArgs({
      args,
      options: { ...GLOBAL_OPTIONS, ...command.options },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    if (error instanceof TypeError && "code" in error && String(error.code).startsWith("ERR_PARSE_ARGS")) {
      throw new UsageError([`${command.name}: ${error.message}`], command.usage);
    }
    throw error;
  }
}

const runtime = detectRuntime();
restrictNewFiles();
main(runtime).then(
  (code) => runtime.exit(code),
  (error) => {
    if (error instanceof UsageError) {
      const problems = error.problems.map((p) => `relay: ${p}`.trimEnd()).join("\n");
      console.error(error.help === undefined ? problems : `${problems}\n\n${error.help}`);
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
