import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { areaOf, checkImports } from "../../scripts/check-imports.ts";

/** A src/ tree made of `files` (path relative to src/ -> text), checked, then removed. */
function check(files: Record<string, string>): string[] {
  const root = mkdtempSync(join(tmpdir(), "relay-imports-"));
  try {
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(dirname(join(root, "src", path)), { recursive: true });
      writeFileSync(join(root, "src", path), text);
    }
    return checkImports(join(root, "src")).map((v) => `${v.file}:${v.line}: ${v.message}`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

describe("scripts/check-imports", () => {
  it("places a file in the longest area that holds it", () => {
    assert.equal(areaOf("delivery/mta-sts/fetch.ts"), "delivery");
    assert.equal(areaOf("smtp/protocol/path.ts"), "smtp/protocol");
    assert.equal(areaOf("smtp/server/session.ts"), "smtp/server");
    assert.equal(areaOf("app.ts"), "app");
    assert.equal(areaOf("nowhere/x.ts"), "");
  });

  it("passes imports down the flow and into core and platform", () => {
    const found = check({
      "core/address.ts": "export const a = 1;\n",
      "platform/net.ts": 'import { a } from "../core/address.ts";\nexport const b = Bun.version ?? Deno.version;\n',
      "queue/store.ts":
        'import { a } from "../core/address.ts";\nimport sql from "../../migrations/0001.sql" with { type: "text" };\n',
      "delivery/scheduler.ts": 'import type { S } from "../queue/store.ts";\nimport { b } from "../platform/net.ts";\n',
      "auth/dkim.ts": '// Bun\'s BoringSSL signs slower than OpenSSL: a comment may name it.\nconst s = "Deno";\n',
    });
    assert.deepEqual(found, []);
  });

  it("reports every import against the rules, of every form, with its line", () => {
    const found = check({
      "ingress/submit.ts": 'export const x = 1;\nimport { y } from "../delivery/return-path.ts";\n',
      "delivery/return-path.ts": [
        'import type { X } from "../ingress/submit.ts";',
        'export { x } from "../ingress/submit.ts";',
        'export const later = () => import("../ingress/submit.ts");',
        'export type T = import("../config/load.ts").Config;',
        "export const y = 1;",
      ].join("\n"),
      "config/load.ts": "export interface Config {}\n",
      "dns/client.ts": 'import type { Config } from "../config/load.ts";\n',
      "queue/store.ts": 'import secret from "../../secrets.json";\n',
    });
    assert.deepEqual(found, [
      "delivery/return-path.ts:1: delivery may not import ingress (../ingress/submit.ts)",
      "delivery/return-path.ts:2: delivery may not import ingress (../ingress/submit.ts)",
      "delivery/return-path.ts:3: delivery may not import ingress (../ingress/submit.ts)",
      "delivery/return-path.ts:4: delivery may not import config (../config/load.ts)",
      "dns/client.ts:1: dns may not import config (../config/load.ts)",
      "ingress/submit.ts:2: ingress may not import delivery (../delivery/return-path.ts)",
      "queue/store.ts:1: queue may not import secrets.json, outside src/",
    ]);
  });

  it("lets only the adapter reach a package's internals", () => {
    const found = check({
      "auth/mailauth.ts": 'import { spf } from "mailauth/lib/spf/index.js";\n',
      "auth/domains.ts":
        'import { getAlignment } from "mailauth/lib/tools.js";\nimport { authenticate } from "mailauth";\n',
    });
    assert.deepEqual(found, [
      "auth/domains.ts:1: imports mailauth/lib/tools.js: only auth/mailauth.ts reaches below the package's API",
    ]);
  });

  it("reports the runtimes named outside platform/, and files in no area", () => {
    const found = check({
      "smtp/server/listener.ts": "export const v = Bun.version;\nexport const w = globalThis.Deno;\n",
      "stray/thing.ts": "export const z = 1;\n",
    });
    assert.deepEqual(found, [
      "smtp/server/listener.ts:1: names Bun: only platform/ knows the runtime",
      "smtp/server/listener.ts:2: names Deno: only platform/ knows the runtime",
      "stray/thing.ts:1: is in no area of the import rules (scripts/check-imports.ts)",
    ]);
  });

  it("keeps what commands load on demand out of main.ts's static imports, type-only and dynamic ones aside", () => {
    const found = check({
      "main.ts": 'import { COMMANDS } from "./cli/registry.ts";\nimport type { Services } from "./app/services.ts";\n',
      "cli/registry.ts": 'import { run } from "./commands/serve.ts";\nexport const COMMANDS = [run];\n',
      "cli/commands/serve.ts":
        'export const run = () => import("../../app/relay.ts");\nimport "../../auth/domains.ts";\n',
      "auth/domains.ts": 'import { type X } from "./mailauth.ts";\nexport { spf } from "./mailauth.ts";\n',
      "auth/mailauth.ts": "export const spf = 1;\nexport type X = number;\n",
      "app/relay.ts": "export const relay = 1;\n",
      "app/services.ts": "export type Services = number;\n",
    });
    assert.deepEqual(found, [
      "main.ts:1: loads auth/mailauth.ts at start (main.ts -> cli/registry.ts -> cli/commands/serve.ts -> " +
      "auth/domains.ts -> auth/mailauth.ts): import it where it is used, with import()",
    ]);
  });

  it("the project's src/ follows the rules", () => {
    const src = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "src");
    assert.deepEqual(checkImports(src).map((v) => `${v.file}:${v.line}: ${v.message}`), []);
  });
});
