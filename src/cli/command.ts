import type { ParseArgsConfig } from "node:util";
import type { BuildInfo } from "./build-info.ts";
import type { Config } from "../config/load.ts";
import type { Logger } from "../core/log.ts";
import type { Runtime } from "../platform/runtime.ts";
import type { Services } from "../app/services.ts";

export type OptionSpec = NonNullable<ParseArgsConfig["options"]>;

/** What a command gets: its parsed arguments and lazy access to the configuration. */
export interface CommandContext {
  readonly runtime: Runtime;
  readonly version: string;
  /** Version, commit, target and build date (src/cli/build-info.ts). */
  readonly build: BuildInfo;
  /** Positional arguments after the command name. */
  readonly positionals: readonly string[];
  readonly options: Readonly<Record<string, string | boolean | string[] | undefined>>;
  /** The validated configuration; loading it is what reports invalid variables (exit 2). */
  config(): Config;
  logger(config: Config): Logger;
  /**
   * Run `body` with the node's services (app/services.ts: the database, its
   * schema brought up to date, and what serve builds over it, built the same
   * way), then close them. With a local database file, the data directory is
   * made private first, as serve does (src/queue/data-dir.ts). No lock is
   * taken: these commands only read or write rows, which they may do while
   * the relay serves.
   */
  withServices<T>(body: (services: Services) => Promise<T>): Promise<T>;
  /** All of standard input, e.g. a password for `users add`. */
  readStdin(): Promise<string>;
  print(line: string): void;
}

export interface Command {
  readonly name: string;
  readonly summary: string;
  readonly usage: string;
  readonly options?: OptionSpec;
  /** Whether it takes positional arguments (an action and its operands); without, any is a usage error. */
  readonly takesArguments?: boolean;
  /** Exit status: 0 success, 1 runtime failure; throw UsageError for 2. */
  run(context: CommandContext): Promise<number>;
}
