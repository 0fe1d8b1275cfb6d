import * as v from "valibot";
import {
  type Document,
  isMap as isYamlMap,
  isNode,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  stringify,
} from "yaml";
import { ruleProblems } from "./checks.ts";
import { overlay } from "./overlay.ts";
import type { ShapingRules } from "./rules.ts";
import { shapingSchema } from "./schema.ts";

/** The rules as data in the file's form: what `GET /v1/shaping` shows and a file may hold. */
export type ShapingDocument = Readonly<Record<string, unknown>>;

/** One problem in a shaping file: `shaping.yaml:42: providers.google.message_rate: expected ...`. */
export interface ShapingError {
  readonly file: string;
  readonly line: number;
  /** The field, as keys from the top of the file; "" for the file as a whole. */
  readonly path: string;
  readonly message: string;
}

export type ShapingLoad =
  | { readonly ok: true; readonly rules: ShapingRules; readonly document: ShapingDocument }
  | { readonly ok: false; readonly errors: readonly ShapingError[] };

export function formatShapingError(error: ShapingError): string {
  return `${error.file}:${error.line}: ${error.path === "" ? "" : `${error.path}: `}${error.message}`;
}

/** Keys as a path: providers.google.mx_suffixes[0], domains."example.com".connections. */
function formatPath(keys: readonly PropertyKey[]): string {
  return keys
    .map((key, i) => {
      if (typeof key === "number") return `[${key}]`;
      const name = String(key);
      const written = /^[A-Za-z_][A-Za-z0-9_-]*$/.test(name) ? name : JSON.stringify(name);
      return i === 0 ? written : `.${written}`;
    })
    .join("");
}

/** The line of the deepest node of `doc` along `keys`: the field itself, or the nearest map that should hold it. */
function lineOf(doc: Document, lines: LineCounter, keys: readonly PropertyKey[]): number {
  const lineAt = (node: unknown, fallback: number) =>
    isNode(node) && node.range ? lines.linePos(node.range[0]).line : fallback;
  let node: unknown = doc.contents;
  let line = lineAt(node, 1);
  for (const key of keys) {
    if (isYamlMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(key));
      if (!pair) break;
      line = lineAt(pair.key, line);
      node = pair.value;
    } else if (isSeq(node) && typeof key === "number" && key < node.items.length) {
      node = node.items[key];
      line = lineAt(node, line);
    } else break;
  }
  return line;
}

/**
 * Read a shaping file (YAML; JSON is YAML too). With `base` (the shipped
 * rules' document) the file is laid over it (overlay.ts); without, it must
 * be complete by itself. Every problem is listed, each with its line and
 * field.
 */
export function loadShapingRules(
  text: string,
  fileName: string,
  base: ShapingDocument = {},
): ShapingLoad {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const syntax = [...doc.errors, ...doc.warnings];
  if (syntax.length > 0) {
    const errors = syntax.map((e) => ({
      file: fileName,
      line: lines.linePos(e.pos[0]).line,
      path: "",
      message: e.message.split("\n")[0]!,
    }));
    return { ok: false, errors };
  }
  let data: unknown;
  try {
    data = doc.toJS();
  } catch (error) {
    // Too many aliases (a "billion laughs" file), an alias to nothing.
    return { ok: false, errors: [{ file: fileName, line: 1, path: "", message: (error as Error).message }] };
  }
  const document = overlay(base, data);
  const at = (keys: readonly PropertyKey[], message: string): ShapingError => ({
    file: fileName,
    line: lineOf(doc, lines, keys),
    path: formatPath(keys),
    message,
  });
  const parsed = v.safeParse(shapingSchema, document, { abortEarly: false });
  const errors = [
    ...(parsed.success
      ? ruleProblems(parsed.output).map((p) => at(p.path, p.message))
      : parsed.issues.map((issue) => at(issue.path?.map((item) => item.key as PropertyKey) ?? [], issue.message))),
  ];
  if (errors.length > 0 || !parsed.success) {
    return { ok: false, errors: errors.sort((a, b) => a.line - b.line || a.path.localeCompare(b.path)) };
  }
  return { ok: true, rules: parsed.output, document: document as ShapingDocument };
}

/** The document as a shaping file. */
export function shapingYaml(document: ShapingDocument): string {
  return stringify(document);
}
