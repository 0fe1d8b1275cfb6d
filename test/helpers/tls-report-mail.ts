// deno-lint-ignore-file no-explicit-any -- JSON answers are checked by assertions, not by types
/**
 * Reads a TLS report mail (RFC 8460 5.3) with an independent parser,
 * Python's `email` package, and unpacks the report it carries:
 * headers, the MIME structure, and the application/tlsrpt+gzip part
 * gunzipped and parsed as JSON.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { gunzipSync } from "node:zlib";
import { PYTHON } from "./peers.ts";

const PARSER = String.raw`
import sys, json, re, base64, email
msg = email.message_from_bytes(sys.stdin.buffer.read())
unfold = lambda v: re.sub(r'\r?\n(?=[ \t])', '', str(v))
out = {
  "type": msg.get_content_type(),
  "reportType": msg.get_param("report-type"),
  "headers": [[k, unfold(v)] for k, v in msg.items()],
  "defects": [type(d).__name__ for d in msg.defects],
  "parts": [],
}
for part in (msg.get_payload() if msg.is_multipart() else []):
  body = part.get_payload(decode=True)
  out["parts"].append({"type": part.get_content_type(), "filename": part.get_filename(),
                       "body": None if body is None else base64.b64encode(body).decode()})
print(json.dumps(out))
`;

export interface ReportMail {
  readonly type: string;
  readonly reportType: string | null;
  readonly defects: string[];
  readonly parts: { type: string; filename: string | null; body: string | null }[];
  header(name: string): string | undefined;
  /** The application/tlsrpt+gzip part's file name and its JSON. */
  readonly filename: string | null;
  readonly report: any;
}

export function readReportMail(message: Uint8Array | string): ReportMail {
  const input = typeof message === "string" ? Buffer.from(message, "latin1") : message;
  const r = spawnSync(PYTHON, ["-c", PARSER], { input, maxBuffer: 64 * 1024 * 1024 });
  assert.equal(r.status, 0, `python parser failed: ${r.stderr?.toString()}`);
  const parsed = JSON.parse(r.stdout.toString()) as Omit<ReportMail, "header" | "filename" | "report"> & {
    headers: [string, string][];
  };
  const gz = parsed.parts.find((p) => p.type === "application/tlsrpt+gzip");
  assert.ok(gz?.body, `no application/tlsrpt+gzip part: ${JSON.stringify(parsed.parts.map((p) => p.type))}`);
  return {
    ...parsed,
    header: (name) => parsed.headers.find(([k]) => k.toLowerCase() === name.toLowerCase())?.[1],
    filename: gz.filename,
    report: JSON.parse(gunzipSync(Buffer.from(gz.body, "base64")).toString("utf8")),
  };
}
