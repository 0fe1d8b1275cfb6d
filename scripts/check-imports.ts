/**
 * The architecture's import rules, written once as data and checked on every
 * import in src/ (run by `npm test`; `bun scripts/check-imports.ts [dir]`).
 *
 * Data flows one way: front ends (SMTP server, HTTP, CLI) -> ingress ->
 * queue -> delivery -> events. `core/` (vocabulary, no I/O) and `platform/`
 * (the runtimes) sit below everything. Protocol code (`smtp/`, `dns/`, `tls/`, `milter/`)
 * knows no policy, so it imports neither configuration nor the queue. Only
 * `platform/` names `Bun` or `Deno`.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import ts from "typescript";

/**
 * Each area of src/ and the areas it may import besides itself. An area is a
 * folder or a file without its extension; a file belongs to the longest area
 * that holds it.
 */
export const IMPORT_RULES: Readonly<Record<string, readonly string[]>> = {
  core: [],
  platform: ["core"],
  config: ["core"],
  dns: ["core", "platform"],
  tls: ["core", "platform"],
  "smtp/protocol": ["core"],
  "smtp/server": ["core", "platform", "smtp/protocol"],
  "smtp/client": ["core", "platform", "smtp/protocol"],
  // The milter protocol's MTA side (content scanners); like smtp/, it knows no policy.
  milter: ["core", "platform"],
  // The URLs of the worker modules, beside main.ts so that they hold in the binary too.
  "worker-modules": ["queue", "auth"],
  queue: ["core", "platform", "worker-modules"],
  auth: ["core", "platform", "dns", "queue", "worker-modules"],
  ingress: ["core", "platform", "dns", "auth", "queue", "milter", "smtp/protocol", "smtp/server"],
  // Shaping rules are data that delivery applies, the HTTP API shows and edits, and the root loads.
  shaping: ["core"],
  delivery: ["core", "platform", "dns", "tls", "queue", "shaping", "smtp/protocol", "smtp/client"],
  events: ["core", "platform", "queue"],
  // The fleet: the shared state's replica, the node registry, the outbox; the HTTP API and the dashboard show it.
  fleet: ["core", "platform", "queue"],
  // Mail to the bounce domain, read into events; a returned reply is classified as delivery classifies one.
  // Ingress hands that mail over through a hook (ingress/smtp-hooks.ts BounceReader), never by import.
  // An unsubscribe by mail (mailto:unsubscribe+TOKEN@) arrives there too.
  feedback: ["core", "queue", "delivery", "unsubscribe"],
  // List-Unsubscribe: the per-recipient copy delivery sends (given to it by the root) and what an unsubscribe does.
  unsubscribe: ["core", "auth", "queue"],
  http: ["core", "platform", "auth", "ingress", "queue", "events", "fleet", "shaping", "unsubscribe", "dashboard"],
  // The dashboard is the HTTP front end's pages: the API's authenticators and views, read from the same services.
  dashboard: ["core", "platform", "auth", "queue", "shaping", "http", "fleet"],
  // The composition root builds every service and passes its dependencies in.
  app: ["*"],
  check: ["core", "platform", "config", "dns", "tls", "queue", "fleet", "milter", "app"],
  cli: ["core", "platform", "config", "dns", "auth", "queue", "events", "app", "check"],
  main: ["*"],
};

/** What an area may import from outside src/: the embedded migrations and the package's version. */
const OUTSIDE_SRC: Readonly<Record<string, readonly string[]>> = {
  queue: ["migrations"],
  main: ["package.json"],
};

/** A package's internals, below its public API, and the one file that may reach them (its adapter). */
const PACKAGE_INTERNALS: Readonly<Record<string, string>> = {
  "mailauth/lib/": "auth/mailauth.ts",
};

/**
 * Modules the command line loads only when a command needs them (a dynamic
 * import): what main.ts imports statically must not reach them, so that
 * `relay version`, `help` and the commands that only call the running
 * relay's API start in a fraction of the time (mailauth alone takes about
 * 0.3 s to load, the whole node more).
 */
const LOADED_ON_DEMAND = ["auth/mailauth.ts", "app/relay.ts", "app/services.ts"];
const ENTRY = "main.ts";

/** Folders whose files may name the runtimes' globals. */
const RUNTIME_AREAS = new Set(["platform"]);
const RUNTIME_GLOBALS = new Set(["Bun", "Deno"]);

export interface Violation {
  /** Path relative to the checked directory. */
  readonly file: string;
  readonly line: number;
  readonly message: string;
}

/** The area of a path relative to src/ ("delivery/mta-sts/fetch.ts" is in "delivery"). */
export function areaOf(path: string): string {
  const parts = path.split(sep).join("/").replace(/\.[mc]?tsx?$/, "");
  let best = "";
  for (const area of Object.keys(IMPORT_RULES)) {
    if ((parts === area || parts.startsWith(`${area}/`)) && area.length > best.length) best = area;
  }
  return best;
}

function mayImport(from: string, to: string): boolean {
  if (from === to) return true;
  const allowed = IMPORT_RULES[from] ?? [];
  return allowed.includes("*") || allowed.includes(to);
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.(ts|tsx|mts)$/.test(name) && !name.endsWith(".d.ts") ? [path] : [];
  });
}

/** Whether an import or re-export loads its module when the importer loads (not type-only, not dynamic). */
function loadsAtOnce(node: ts.ImportDeclaration | ts.ExportDeclaration): boolean {
  if (ts.isExportDeclaration(node)) return !node.isTypeOnly;
  const clause = node.importClause;
  if (clause === undefined) return true; // import "./x.ts": for its effects
  if (clause.isTypeOnly) return false;
  if (clause.name !== undefined) return true;
  const bindings = clause.namedBindings;
  if (bindings === undefined || ts.isNamespaceImport(bindings)) return true;
  return bindings.elements.length === 0 || bindings.elements.some((e) => !e.isTypeOnly);
}

/** The relative modules `source` loads at once, as paths relative to `root`. */
function staticImportsOf(source: ts.SourceFile, path: string, root: string): string[] {
  return source.statements.flatMap((node) =>
    (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier !== undefined &&
      ts.isStringLiteralLike(node.moduleSpecifier) && node.moduleSpecifier.text.startsWith(".") && loadsAtOnce(node)
      ? [relative(root, resolve(dirname(path), node.moduleSpecifier.text)).split(sep).join("/")]
      : []
  );
}

/** Each module of LOADED_ON_DEMAND that main.ts's static imports reach, with the chain that reaches it. */
function loadedAtStart(root: string, sources: ReadonlyMap<string, ts.SourceFile>): Violation[] {
  const via = new Map<string, string>([[ENTRY, ""]]);
  const queue = [ENTRY];
  while (queue.length > 0) {
    const file = queue.shift()!;
    const source = sources.get(file);
    if (source === undefined) continue;
    for (const next of staticImportsOf(source, join(root, file), root)) {
      if (via.has(next)) continue;
      via.set(next, file);
      queue.push(next);
    }
  }
  return LOADED_ON_DEMAND.filter((module) => via.has(module)).map((module) => {
    const chain = [module];
    while (via.get(chain[0]!)) chain.unshift(via.get(chain[0]!)!);
    return {
      file: ENTRY,
      line: 1,
      message: `loads ${module} at start (${chain.join(" -> ")}): import it where it is used, with import()`,
    };
  });
}

/** Every relative import of `text` (static, type-only, re-export, dynamic) with its line. */
function importsOf(source: ts.SourceFile): { specifier: string; line: number }[] {
  const found: { specifier: string; line: number }[] = [];
  const add = (node: ts.Expression | undefined) => {
    if (node && ts.isStringLiteralLike(node)) {
      found.push({ specifier: node.text, line: source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1 });
    }
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) add(node.moduleSpecifier);
    else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) add(node.arguments[0]);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      add(node.argument.literal as ts.Expression);
    } else if (ts.isNewExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === "URL") {
      // new URL("./queue/db-worker.ts", import.meta.url) loads a module too.
      const [first, second] = node.arguments ?? [];
      if (second && second.getText(source) === "import.meta.url") add(first);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

function runtimeNames(source: ts.SourceFile): { name: string; line: number }[] {
  const found: { name: string; line: number }[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isIdentifier(node) && RUNTIME_GLOBALS.has(node.text)) {
      found.push({ name: node.text, line: source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1 });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** Every import in `srcDir` that breaks the rules, and every runtime global named outside platform/. */
export function checkImports(srcDir: string): Violation[] {
  const root = resolve(srcDir);
  const violations: Violation[] = [];
  const sources = new Map<string, ts.SourceFile>();
  for (const path of sourceFiles(root)) {
    const file = relative(root, path);
    const from = areaOf(file);
    if (from === "") {
      violations.push({ file, line: 1, message: "is in no area of the import rules (scripts/check-imports.ts)" });
      continue;
    }
    const source = ts.createSourceFile(path, readFileSync(path, "utf8"), ts.ScriptTarget.Latest, true);
    sources.set(file.split(sep).join("/"), source);
    for (const { specifier, line } of importsOf(source)) {
      if (!specifier.startsWith(".")) {
        const internals = Object.keys(PACKAGE_INTERNALS).find((prefix) => specifier.startsWith(prefix));
        const adapter = internals && PACKAGE_INTERNALS[internals];
        if (adapter && file.split(sep).join("/") !== adapter) {
          violations.push({
            file,
            line,
            message: `imports ${specifier}: only ${adapter} reaches below the package's API`,
          });
        }
        continue;
      }
      const target = relative(root, resolve(dirname(path), specifier));
      if (target.startsWith("..")) {
        const outside = relative(dirname(root), resolve(dirname(path), specifier)).split(sep).join("/");
        const allowed = (OUTSIDE_SRC[from] ?? []).some((prefix) =>
          outside === prefix || outside.startsWith(`${prefix}/`)
        );
        if (!allowed) violations.push({ file, line, message: `${from} may not import ${outside}, outside src/` });
        continue;
      }
      const to = areaOf(target);
      if (to === "") violations.push({ file, line, message: `${target} is in no area of the import rules` });
      else if (!mayImport(from, to)) {
        violations.push({ file, line, message: `${from} may not import ${to} (${specifier})` });
      }
    }
    if (!RUNTIME_AREAS.has(from)) {
      for (const { name, line } of runtimeNames(source)) {
        violations.push({ file, line, message: `names ${name}: only platform/ knows the runtime` });
      }
    }
  }
  violations.push(...loadedAtStart(root, sources));
  return violations.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line);
}

if (import.meta.main) {
  const dir = process.argv[2] ?? join(dirname(new URL(import.meta.url).pathname), "..", "src");
  const violations = checkImports(dir);
  for (const v of violations) console.error(`${join(relative(process.cwd(), dir), v.file)}:${v.line}: ${v.message}`);
  if (violations.length > 0) {
    console.error(
      `check-imports: ${violations.length} import rule violation${
        violations.length === 1 ? "" : "s"
      } (rules: scripts/check-imports.ts)`,
    );
    process.exit(1);
  }
  console.log("check-imports: every import follows the rules");
}
