import type { OpenApiDocument } from "./openapi.ts";

/*
 * GET /docs: the OpenAPI document rendered on the server into one plain HTML
 * page with inline CSS, no scripts and nothing fetched from elsewhere (the
 * relay may run with no Internet access).
 */

// deno-lint-ignore no-explicit-any -- the OpenAPI document is walked as plain JSON
type Json = any;

const METHODS = ["get", "post", "put", "patch", "delete", "head", "options", "trace"] as const;

function esc(text: unknown): string {
  return String(text).replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

/** Escaped text with `code` spans: the only markup the descriptions use. */
function prose(text: unknown): string {
  if (text === undefined || text === null || text === "") return "";
  return esc(text).replace(/`([^`]+)`/g, "<code>$1</code>");
}

function refName(ref: string): string {
  return ref.split("/").at(-1)!;
}

function anchor(kind: string, name: string): string {
  return `${kind}-${name.replace(/[^A-Za-z0-9_-]+/g, "-")}`;
}

function refLink(ref: string): string {
  const name = refName(ref);
  return `<a href="#${anchor("schema", name)}">${esc(name)}</a>`;
}

/** A one-line type: string, array of Attachment, "a" | "b", map of string to string. */
function typeLabel(schema: Json): string {
  if (!schema || typeof schema !== "object") return "any";
  if (schema.$ref) return refLink(schema.$ref);
  const union = schema.anyOf ?? schema.oneOf;
  if (Array.isArray(union)) return union.map(typeLabel).join(" | ");
  if (schema.const !== undefined) return `<code>${esc(JSON.stringify(schema.const))}</code>`;
  if (Array.isArray(schema.enum)) {
    return schema.enum.map((e: unknown) => `<code>${esc(JSON.stringify(e))}</code>`).join(" | ");
  }
  const type = Array.isArray(schema.type) ? schema.type.join(" | ") : schema.type;
  if (type === "array") return `array of ${typeLabel(schema.items)}`;
  if (type === "object" && !schema.properties && schema.additionalProperties !== undefined) {
    const values = schema.additionalProperties === true || Object.keys(schema.additionalProperties).length === 0
      ? "any"
      : typeLabel(schema.additionalProperties);
    return `map of string to ${values}`;
  }
  if (type === undefined) return Object.keys(schema).length === 0 ? "any" : "value";
  return esc(schema.format ? `${type} (${schema.format})` : type);
}

function constraints(schema: Json): string[] {
  if (!schema || typeof schema !== "object") return [];
  const out: string[] = [];
  const add = (label: string, value: unknown, asJson = false) =>
    out.push(`${esc(label)} <code>${esc(typeof value === "string" && !asJson ? value : JSON.stringify(value))}</code>`);
  if (schema.minLength !== undefined) add("min length", schema.minLength);
  if (schema.maxLength !== undefined) add("max length", schema.maxLength);
  if (schema.minItems !== undefined) add("min items", schema.minItems);
  if (schema.maxItems !== undefined) add("max items", schema.maxItems);
  if (schema.minimum !== undefined) add("minimum", schema.minimum);
  if (schema.maximum !== undefined) add("maximum", schema.maximum);
  if (schema.pattern !== undefined) add("pattern", schema.pattern);
  if (schema.contentEncoding !== undefined) add("encoding", schema.contentEncoding);
  if (schema.propertyNames?.pattern !== undefined) add("key pattern", schema.propertyNames.pattern);
  if (schema.default !== undefined) add("default", schema.default, true);
  if (schema.type === "array" && schema.items && !schema.items.$ref) {
    out.push(...constraints(schema.items).map((c) => `items: ${c}`));
  }
  return out;
}

/** An inline object worth a nested table (named ones are linked instead). */
function nestedObject(schema: Json): Json | undefined {
  if (!schema || typeof schema !== "object" || schema.$ref) return undefined;
  if (schema.properties) return schema;
  if (schema.type === "array") return nestedObject(schema.items);
  return undefined;
}

function propertiesTable(schema: Json, depth: number): string {
  const required = new Set<string>(schema.required ?? []);
  const rows = Object.entries(schema.properties ?? {}).map(([name, property]: [string, Json]) => {
    const details = [
      prose(property?.description ?? property?.items?.description),
      ...constraints(property).map((c) => `<span class="c">${c}</span>`),
    ].filter(Boolean);
    const nested = depth < 4 ? nestedObject(property) : undefined;
    return (
      `<tr><td><code>${esc(name)}</code>${required.has(name) ? ' <span class="req">required</span>' : ""}</td>` +
      `<td>${typeLabel(property)}</td><td>${details.join("<br>")}${
        nested ? propertiesTable(nested, depth + 1) : ""
      }</td></tr>`
    );
  });
  const extra = schema.additionalProperties === false
    ? '<p class="note">No other fields are accepted.</p>'
    : schema.additionalProperties && typeof schema.additionalProperties === "object" &&
        Object.keys(schema.additionalProperties).length > 0
    ? `<p class="note">Other fields: ${typeLabel(schema.additionalProperties)}</p>`
    : "";
  if (rows.length === 0) return extra;
  return `<table class="props"><thead><tr><th>field</th><th>type</th><th>notes</th></tr></thead><tbody>${
    rows.join("")
  }</tbody></table>${extra}`;
}

function renderSchema(schema: Json, depth = 0): string {
  if (!schema || typeof schema !== "object") return "";
  if (schema.$ref) return `<p>${refLink(schema.$ref)}</p>`;
  const union = schema.anyOf ?? schema.oneOf;
  if (Array.isArray(union)) {
    return `<p>One of:</p><ul>${
      union.map((s: Json) => `<li>${s.$ref ? refLink(s.$ref) : renderSchema(s, depth + 1)}</li>`).join("")
    }</ul>`;
  }
  const head = [prose(schema.description)].filter(Boolean).map((d) => `<p>${d}</p>`).join("");
  if (schema.properties || schema.type === "object") return head + propertiesTable(schema, depth);
  const cs = constraints(schema);
  return `${head}<p>${typeLabel(schema)}${cs.length ? ` (${cs.join(", ")})` : ""}</p>${
    nestedObject(schema) ? propertiesTable(nestedObject(schema), depth + 1) : ""
  }`;
}

function renderContent(content: Json): string {
  return Object.entries(content ?? {})
    .map(([media, body]: [string, Json]) =>
      `<div class="media"><span class="mt">${esc(media)}</span>${body?.schema ? renderSchema(body.schema) : ""}</div>`
    )
    .join("");
}

function scopesOf(operation: Json, doc: OpenApiDocument): string {
  const security = operation.security ?? doc.security ?? [];
  if (security.length === 0) return '<span class="scope open">no authentication</span>';
  return security
    .map((requirement: Json) =>
      Object.entries(requirement)
        .map(([scheme, scopes]: [string, Json]) =>
          `<span class="scope">${esc(scheme)}${
            scopes.length ? `: ${scopes.map((s: string) => esc(s)).join(", ")} scope` : ""
          }</span>`
        )
        .join(" ")
    )
    .join(" or ");
}

function operationId(method: string, path: string): string {
  return anchor("op", `${method}-${path}`);
}

function renderOperation(doc: OpenApiDocument, path: string, method: string, operation: Json): string {
  const parameters: Json[] = operation.parameters ?? [];
  const parameterTable = parameters.length
    ? `<h4>Parameters</h4><table class="props"><thead><tr><th>name</th><th>in</th><th>type</th><th>notes</th></tr></thead><tbody>${
      parameters
        .map((p) => {
          const notes = [
            prose(p.description ?? p.schema?.description),
            ...constraints(p.schema).map((c) => `<span class="c">${c}</span>`),
          ].filter(Boolean);
          return `<tr><td><code>${esc(p.name)}</code>${
            p.required ? ' <span class="req">required</span>' : ""
          }</td><td>${esc(p.in)}</td><td>${typeLabel(p.schema)}</td><td>${notes.join("<br>")}</td></tr>`;
        })
        .join("")
    }</tbody></table>`
    : "";
  const body = operation.requestBody
    ? `<h4>Request body${operation.requestBody.required ? ' <span class="req">required</span>' : ""}</h4>${
      renderContent(operation.requestBody.content)
    }`
    : "";
  const responses = Object.entries(operation.responses ?? {})
    .map(
      ([status, response]: [string, Json]) =>
        `<details${status.startsWith("2") ? " open" : ""}><summary><span class="status s${esc(status[0])}">${
          esc(status)
        }</span> ${prose(response.description)}</summary>${renderContent(response.content)}</details>`,
    )
    .join("");
  return (
    `<section class="op" id="${operationId(method, path)}">` +
    `<h3><span class="method ${esc(method)}">${esc(method.toUpperCase())}</span> <code>${esc(path)}</code></h3>` +
    `<p class="summary">${prose(operation.summary)} ${scopesOf(operation, doc)}</p>` +
    (operation.description ? `<p>${prose(operation.description)}</p>` : "") +
    parameterTable +
    body +
    (responses ? `<h4>Responses</h4>${responses}` : "") +
    `</section>`
  );
}

const CSS = `
*{box-sizing:border-box}
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
main{max-width:980px;margin:0 auto;padding:24px 20px 64px}
nav{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:12px 18px;margin:16px 0}
nav ul{margin:4px 0;padding-left:18px}
h1{margin:8px 0 4px}h2{margin-top:40px;border-bottom:1px solid #dde1e7;padding-bottom:4px}
h3{margin:0 0 6px;font-size:17px}h4{margin:16px 0 6px;font-size:14px;text-transform:uppercase;letter-spacing:.04em;color:#555}
code{font:13px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#eef0f4;padding:1px 4px;border-radius:4px;word-break:break-word}
.op,.schema{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:14px 18px;margin:14px 0}
.method{display:inline-block;min-width:64px;text-align:center;color:#fff;border-radius:4px;padding:1px 8px;font-size:13px;font-weight:600}
.get{background:#2f6fdb}.post{background:#1f9d55}.delete{background:#d64545}.put,.patch{background:#c27c0e}.head,.options,.trace{background:#666}
.scope{display:inline-block;font-size:12px;background:#fff4d6;border:1px solid #ecd590;border-radius:10px;padding:0 8px;margin-left:6px}
.scope.open{background:#e7f6ec;border-color:#a8dab8}
.req{font-size:11px;color:#b42318;font-weight:600}
.c{color:#555;font-size:13px}
table.props{border-collapse:collapse;width:100%;margin:6px 0;font-size:14px}
table.props th,table.props td{border-top:1px solid #e6e9ee;padding:5px 8px;text-align:left;vertical-align:top}
table.props th{font-size:12px;color:#666;font-weight:600}
table.props table.props{margin-top:8px;background:#fafbfc}
details{margin:4px 0}summary{cursor:pointer}
.status{display:inline-block;min-width:40px;font-weight:600}.s2{color:#1f7a43}.s4{color:#b42318}.s5{color:#8a1c1c}
.media{margin:6px 0 6px 14px}.mt{font-size:12px;color:#666}
.note{font-size:13px;color:#555;margin:4px 0}
`;

/** The whole page. */
export function renderDocs(doc: OpenApiDocument): string {
  const d = doc as Json;
  const operations: { path: string; method: string; operation: Json }[] = [];
  for (const [path, item] of Object.entries(d.paths ?? {}) as [string, Json][]) {
    for (const method of METHODS) if (item?.[method]) operations.push({ path, method, operation: item[method] });
  }
  const tagNames: string[] = [...(d.tags ?? []).map((t: Json) => t.name)];
  for (const { operation } of operations) {
    for (const tag of operation.tags ?? ["other"]) if (!tagNames.includes(tag)) tagNames.push(tag);
  }
  const byTag = tagNames
    .map((tag) => ({
      tag,
      description: (d.tags ?? []).find((t: Json) => t.name === tag)?.description,
      ops: operations.filter(({ operation }) => (operation.tags ?? ["other"]).includes(tag)),
    }))
    .filter((group) => group.ops.length > 0);
  const schemes = Object.entries(d.components?.securitySchemes ?? {})
    .map(([name, scheme]: [string, Json]) =>
      `<li><code>${esc(name)}</code>: ${esc(scheme.type)} ${esc(scheme.scheme ?? "")}. ${
        prose(scheme.description)
      }</li>`
    )
    .join("");
  const schemas = Object.entries(d.components?.schemas ?? {}).sort(([a], [b]) => a.localeCompare(b));
  const toc = byTag
    .map(
      (group) =>
        `<li>${esc(group.tag)}<ul>${
          group.ops
            .map(({ path, method, operation }) =>
              `<li><a href="#${operationId(method, path)}"><code>${esc(method.toUpperCase())} ${esc(path)}</code></a> ${
                prose(operation.summary)
              }</li>`
            )
            .join("")
        }</ul></li>`,
    )
    .join("") + (schemas.length ? `<li><a href="#schemas">schemas</a></li>` : "");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(d.info?.title ?? "API")} reference</title><style>${CSS}</style></head>
<body><main>
<h1>${esc(d.info?.title ?? "API")} <small class="c">${esc(d.info?.version ?? "")} · OpenAPI ${
    esc(d.openapi)
  }</small></h1>
<p>${prose(d.info?.description)}</p>
<p class="note">Machine-readable: <a href="/openapi.json"><code>/openapi.json</code></a></p>
${schemes ? `<h2>Authentication</h2><ul>${schemes}</ul>` : ""}
<nav><strong>Contents</strong><ul>${toc}</ul></nav>
${
    byTag
      .map(
        (group) =>
          `<h2 id="${anchor("tag", group.tag)}">${esc(group.tag)}</h2>${
            group.description ? `<p>${prose(group.description)}</p>` : ""
          }${
            group.ops
              .map(({ path, method, operation }) => renderOperation(doc, path, method, operation))
              .join("")
          }`,
      )
      .join("")
  }
${
    schemas.length
      ? `<h2 id="schemas">Schemas</h2>${
        schemas.map(([name, schema]) =>
          `<section class="schema" id="${anchor("schema", name)}"><h3>${esc(name)}</h3>${
            renderSchema(schema)
          }</section>`
        ).join("")
      }`
      : ""
  }
</main></body></html>`;
}
