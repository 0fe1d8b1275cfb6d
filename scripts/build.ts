/**
 * Build the single executable `dist/relay` with Bun's compiler.
 *
 *   bun scripts/build.ts [--entry src/main.ts] [--outfile dist/relay] [--target bun-linux-x64]
 *                        [--addon FILE] [--runtime FILE]
 *
 * --addon is the libSQL addon (index.node) to embed, by default the one of
 * the target's `@libsql/*` package in node_modules (npm installs only this
 * machine's); --runtime is the Bun executable of the target to compile onto
 * (Bun.build's compile.executablePath), by default the one Bun picks itself.
 * scripts/release.ts passes both, fetched with npm, for each release target.
 *
 * Two things a plain `bun build --compile` gets wrong are fixed by plugins:
 *
 * - libSQL's native addon: `libsql` picks `@libsql/<platform>` with a computed
 *   `require`, which the bundler cannot follow, so the addon is left out and
 *   the binary fails at start. We rewrite that `require` to the literal path
 *   of the addon for the target, and Bun embeds the `.node` file.
 * - Migrations: `src/queue/migration-files.ts` reads `migrations/` from disk.
 *   The binary has no such folder, so at build time we replace that module
 *   with one that carries every migration (journal order, SQL text) inline.
 *
 * What `relay version` prints is compiled in as the global constant
 * `RELAY_BUILD` (src/cli/build-info.ts): package.json's "version", the git
 * commit (with "-dirty" when tracked files differ from it), the target
 * without its "bun-" prefix, and the build time (SOURCE_DATE_EPOCH when set,
 * for reproducible builds).
 */
import type { BunPlugin } from "bun";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import type { BuildInfo } from "../src/cli/build-info.ts";
import { LIBSQL_ADDON } from "./release-targets.ts";

const root = resolve(import.meta.dir, "..");

const { values: opts } = parseArgs({
  options: {
    entry: { type: "string", default: "src/main.ts" },
    outfile: { type: "string", default: "dist/relay" },
    target: { type: "string", default: "bun-linux-x64" },
    addon: { type: "string" },
    runtime: { type: "string" },
  },
  strict: true,
});

function fail(message: string): never {
  console.error(`build: ${message}`);
  process.exit(1);
}

const entry = resolve(root, opts.entry!);
const outfile = resolve(root, opts.outfile!);
const target = opts.target!;
// A failed build must not leave an older binary behind for the tests to run.
rmSync(outfile, { force: true });
const addonPackage = LIBSQL_ADDON[target] ??
  fail(`no libSQL addon known for target "${target}" (known: ${Object.keys(LIBSQL_ADDON).join(", ")})`);
if (!existsSync(entry)) fail(`entry point "${relative(root, entry)}" does not exist`);
const runtimeExecutable = opts.runtime === undefined ? undefined : resolve(opts.runtime);
if (runtimeExecutable !== undefined && !existsSync(runtimeExecutable)) {
  fail(`--runtime "${runtimeExecutable}" does not exist`);
}

/** The addon to embed: --addon, or the target's package resolved from the repo (whatever the entry is). */
function addonFile(): string {
  if (opts.addon !== undefined) {
    const given = resolve(opts.addon);
    return existsSync(given) ? given : fail(`--addon "${given}" does not exist`);
  }
  try {
    return Bun.resolveSync(`${addonPackage}/index.node`, root);
  } catch {
    fail(
      `"${addonPackage}/index.node" is not installed; run "npm install" (the addon for ${target} must be in node_modules), ` +
        "or give it with --addon (scripts/release fetches every target's)",
    );
  }
}
const addonPath = addonFile();

// ---- what `relay version` says ------------------------------------------------

function git(args: string[]): string | undefined {
  try {
    return execFileSync("git", args, { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return undefined; // no git, or not a checkout
  }
}

function buildInfo(): BuildInfo {
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version?: string };
  const sha = git(["rev-parse", "HEAD"]);
  const dirty = sha !== undefined && git(["status", "--porcelain", "--untracked-files=no"]) !== "";
  const epoch = process.env.SOURCE_DATE_EPOCH;
  const date = epoch === undefined || epoch === "" ? new Date() : new Date(Number(epoch) * 1000);
  if (Number.isNaN(date.getTime())) fail(`SOURCE_DATE_EPOCH "${epoch}" is not a number of seconds`);
  return {
    version: pkg.version ?? fail('package.json has no "version"'),
    commit: sha ? `${sha}${dirty ? "-dirty" : ""}` : null,
    target: target.replace(/^bun-/, ""),
    buildDate: date.toISOString().replace(/\.\d{3}Z$/, "Z"),
  };
}

// ---- plugin: embed the libSQL native addon ----------------------------------

/** `require(`@libsql/${target}`)` in libsql's index.js and promise.js. */
const COMPUTED_REQUIRE = /require\(\s*`@libsql\/\$\{target\}`\s*\)/g;

const libsqlAddon: BunPlugin = {
  name: "relay-libsql-addon",
  setup(build) {
    build.onLoad({ filter: /[\\/]node_modules[\\/]libsql[\\/](index|promise)\.js$/ }, async (args) => {
      const source = await Bun.file(args.path).text();
      const matches = source.match(COMPUTED_REQUIRE)?.length ?? 0;
      if (matches !== 1) {
        throw new Error(
          `relay-libsql-addon: expected one require(\`@libsql/\${target}\`) in ${args.path}, found ${matches}; ` +
            "the libsql package changed, update scripts/build.ts",
        );
      }
      return {
        contents: source.replace(COMPUTED_REQUIRE, `require(${JSON.stringify(addonPath)})`),
        loader: "js",
      };
    });
  },
};

// ---- plugin: embed the migrations --------------------------------------------

const migrationModule = join(root, "src", "queue", "migration-files.ts");
const migrationsDir = join(root, "migrations");

/** The module that replaces src/queue/migration-files.ts in the binary. */
function inlineMigrationsModule(): string {
  const original = readFileSync(migrationModule, "utf8");
  // The replacement must offer what the original offers; if the module grows
  // another export, this build must learn it rather than drop it silently.
  const exported = [
    ...original.matchAll(/^export\s+(?:async\s+)?(?:function|const|let|interface|type|class)\s+(\w+)/gm),
  ]
    .map((m) => m[1])
    .sort();
  if (exported.join(",") !== "MigrationFile,migrationFiles") {
    throw new Error(
      `relay-migrations: ${relative(root, migrationModule)} exports ${exported.join(", ")}; ` +
        "scripts/build.ts only knows MigrationFile and migrationFiles, update it",
    );
  }
  const journalPath = join(migrationsDir, "meta", "_journal.json");
  const journal = JSON.parse(readFileSync(journalPath, "utf8")) as { entries?: { tag?: unknown }[] };
  if (!Array.isArray(journal.entries)) throw new Error(`relay-migrations: ${journalPath} has no "entries" list`);
  const files = journal.entries.map(({ tag }) => {
    if (typeof tag !== "string" || tag === "") throw new Error(`relay-migrations: a journal entry has no tag`);
    const file = join(migrationsDir, `${tag}.sql`);
    if (!existsSync(file)) throw new Error(`relay-migrations: journal names "${tag}" but ${file} does not exist`);
    return { tag, sql: readFileSync(file, "utf8") };
  });
  return [
    "// Generated by scripts/build.ts: the migrations, inline.",
    "export interface MigrationFile { readonly tag: string; readonly sql: string; }",
    `const FILES: readonly MigrationFile[] = ${JSON.stringify(files)};`,
    "export function migrationFiles(): MigrationFile[] { return FILES.map((f) => ({ tag: f.tag, sql: f.sql })); }",
    "",
  ].join("\n");
}

const embeddedMigrations: BunPlugin = {
  name: "relay-migrations",
  setup(build) {
    build.onLoad({ filter: /[\\/]src[\\/]queue[\\/]migration-files\.ts$/ }, (args) => {
      if (resolve(args.path) !== migrationModule) return undefined;
      return { contents: inlineMigrationsModule(), loader: "ts" };
    });
  },
};

// ---- build -------------------------------------------------------------------

const info = buildInfo();
mkdirSync(dirname(outfile), { recursive: true });
const started = performance.now();
const result = await Bun.build({
  // Worker modules are separate entry points: a compiled binary only finds a
  // worker that was bundled into it (src/queue/worker-client.ts starts this one).
  entrypoints: [entry, resolve(root, "src/queue/db-worker.ts"), resolve(root, "src/auth/dkim-worker.ts")],
  compile: {
    target: target as Bun.Build.CompileTarget,
    ...(runtimeExecutable === undefined ? {} : { executablePath: runtimeExecutable }),
    outfile,
    // Configuration comes from the environment and --env-file only; a .env or
    // bunfig.toml lying in the working directory must not change the binary.
    autoloadDotenv: false,
    autoloadBunfig: false,
  },
  minify: true,
  // Bun embeds the source map in the executable (stack traces name src/
  // files); the .map it also writes beside it is removed below.
  sourcemap: "linked",
  define: { RELAY_BUILD: JSON.stringify(info) },
  plugins: [libsqlAddon, embeddedMigrations],
  throw: false,
});
if (!result.success) {
  for (const log of result.logs) console.error(log);
  fail(`compiling ${relative(root, entry)} failed`);
}
for (const log of result.logs) console.warn(log);
rmSync(`${outfile}.map`, { force: true });
if (!existsSync(outfile)) fail(`Bun reported success but ${outfile} is not there`);
const shown = relative(process.cwd(), outfile);
console.log(
  `build: ${shown.startsWith("..") ? outfile : shown} (${target}, version ${info.version}, commit ${
    info.commit ?? "unknown"
  }) in ${Math.round(performance.now() - started)} ms`,
);
