/**
 * Summarise `bun --cpu-prof` profiles of the relay (scripts/bench --cpu-prof DIR
 * writes one per relay run): where the main thread's busy time goes.
 *
 *   bun scripts/bench-profile.ts DIR/relay-e2e-5k.cpuprofile [more files] [--top 20] [--json]
 *
 * Bun's profiler samples the main JS thread only, and only while JavaScript
 * (or a native function called from it) is on the stack: an idle event loop
 * leaves a gap in timeDeltas, not an "(idle)" sample. So shares here are
 * shares of samples (busy time), and busy ms = samples x interval. The
 * database worker thread is not in the profile: the benchmark's per-thread
 * CPU times (/proc/<pid>/task) give its share.
 *
 * Each sample is put in one bucket by its leaf frame:
 *   - start-up: anything under module loading (require / module bodies);
 *   - postMessage: the native postMessage (structured clone of a request to
 *     the database worker) and the worker client's own glue (src/queue/worker-client.ts);
 *   - Bun node:net / streams: frames of Bun's node: and internal: modules, and
 *     natives they call (writeBuffered is the socket write);
 *   - drizzle-orm, libSQL client, other dependencies: by node_modules package;
 *   - relay (src/): the relay's own code, and natives it calls directly
 *     (subarray, indexOf, TextDecoder ...).
 * A native leaf (no url) goes to the bucket of its nearest caller with a url.
 * When scripts/bench wrote FILE's measured window beside it
 * (relay-TAG.window.json: the measured load, epoch ms), only samples inside
 * it count, so start-up, warm-up and shutdown stay out.
 * For every bucket, "via" names the nearest relay function (src/) on the
 * stack: which of our calls the time in drizzle or in the socket layer
 * comes from.
 */
import { existsSync, readFileSync } from "node:fs";
import { basename } from "node:path";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

type Bucket =
  | "start-up"
  | "postMessage (to the DB worker)"
  | "Bun node:net / streams"
  | "drizzle-orm"
  | "libSQL client"
  | "other dependencies"
  | "relay (src/)"
  | "unattributed native";

function where(url: string): Bucket | undefined {
  if (!url) return undefined;
  if (url.startsWith("node:") || url.startsWith("internal:") || url.startsWith("bun:")) return "Bun node:net / streams";
  const nm = url.lastIndexOf("node_modules/");
  if (nm >= 0) {
    const pkg = url.slice(nm + "node_modules/".length);
    if (pkg.startsWith("drizzle-orm/")) return "drizzle-orm";
    if (pkg.startsWith("@libsql/") || pkg.startsWith("libsql/")) return "libSQL client";
    return "other dependencies";
  }
  if (url.endsWith("src/queue/worker-client.ts")) return "postMessage (to the DB worker)";
  if (url.includes("/src/")) return "relay (src/)";
  return "other dependencies";
}

function short(frame: CallFrame): string {
  const url = frame.url.replace(/.*node_modules\//, "").replace(/.*\/(src\/)/, "$1");
  return `${frame.functionName || "(anonymous)"}${url ? ` ${url}:${frame.lineNumber + 1}` : " [native]"}`;
}

function summarise(file: string, top: number) {
  const p = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const windowFile = file.replace(/\.cpuprofile$/, ".window.json");
  const window = existsSync(windowFile)
    ? (JSON.parse(readFileSync(windowFile, "utf8")) as { fromMs: number; toMs: number })
    : undefined;
  if (window) {
    // startTime and the deltas are microseconds since the epoch.
    let t = p.startTime;
    const keep: number[] = [];
    const keepDeltas: number[] = [];
    p.samples.forEach((id, i) => {
      t += p.timeDeltas[i] ?? 0;
      if (t >= window.fromMs * 1000 && t <= window.toMs * 1000) {
        keep.push(id);
        keepDeltas.push(p.timeDeltas[i] ?? 0);
      }
    });
    p.samples = keep;
    p.timeDeltas = keepDeltas;
  }
  const deltas = [...p.timeDeltas].sort((a, b) => a - b);
  // The sampling interval: the usual gap between two busy samples (default 1,000 us).
  const intervalUs = deltas[Math.floor(deltas.length * 0.1)] ?? 1000;

  const bucketOf = new Map<number, Bucket>();
  const classify = (id: number): Bucket => {
    const cached = bucketOf.get(id);
    if (cached) return cached;
    let bucket: Bucket | undefined;
    const leaf = byId.get(id)!.callFrame;
    for (let c: number | undefined = id; c !== undefined; c = parent.get(c)) {
      const f = byId.get(c)!.callFrame;
      // Module loading, and the self-signed certificate made at start (RSA key generation).
      if (
        f.functionName === "require" || f.functionName === "(module)" || f.functionName === "bound require" ||
        f.url.includes("node_modules/selfsigned/")
      ) {
        bucket = "start-up";
        break;
      }
    }
    if (!bucket && leaf.functionName === "postMessage" && !leaf.url) bucket = "postMessage (to the DB worker)";
    for (let c: number | undefined = id; !bucket && c !== undefined; c = parent.get(c)) {
      bucket = where(byId.get(c)!.callFrame.url);
    }
    bucket ??= "unattributed native";
    bucketOf.set(id, bucket);
    return bucket;
  };

  const viaOf = new Map<number, string>();
  const via = (id: number): string => {
    let v = viaOf.get(id);
    if (v === undefined) {
      v = "(no relay frame)";
      for (let c: number | undefined = id; c !== undefined; c = parent.get(c)) {
        const f = byId.get(c)!.callFrame;
        if (
          f.url.includes("/src/") && !f.url.includes("node_modules/") && !f.url.endsWith("src/queue/worker-client.ts")
        ) {
          v = short(f);
          break;
        }
      }
      viaOf.set(id, v);
    }
    return v;
  };
  const buckets = new Map<Bucket, number>();
  const bucketVia = new Map<Bucket, Map<string, number>>();
  const selfFn = new Map<string, { n: number; caller: Map<string, number>; bucket: Map<Bucket, number> }>();
  for (const id of p.samples) {
    const b = classify(id);
    buckets.set(b, (buckets.get(b) ?? 0) + 1);
    if (b === "start-up") continue;
    const vias = bucketVia.get(b) ?? new Map<string, number>();
    const v = via(id);
    vias.set(v, (vias.get(v) ?? 0) + 1);
    bucketVia.set(b, vias);
    const node = byId.get(id)!;
    const key = short(node.callFrame);
    const entry = selfFn.get(key) ?? { n: 0, caller: new Map(), bucket: new Map() };
    entry.n++;
    entry.bucket.set(b, (entry.bucket.get(b) ?? 0) + 1);
    if (!node.callFrame.url) {
      // For a native, who called it says what it is (writeBuffered from node:net, postMessage from the worker client).
      const up = parent.get(id);
      const caller = up === undefined ? "?" : short(byId.get(up)!.callFrame);
      entry.caller.set(caller, (entry.caller.get(caller) ?? 0) + 1);
    }
    selfFn.set(key, entry);
  }
  const samples = p.samples.length;
  const steady = samples - (buckets.get("start-up") ?? 0);
  const pct = (n: number, of: number) => Number(((n / of) * 100).toFixed(1));
  return {
    file: basename(file),
    wallS: Number((window ? (window.toMs - window.fromMs) / 1000 : (p.endTime - p.startTime) / 1e6).toFixed(2)),
    window: window !== undefined,
    intervalUs,
    samples,
    busyMs: Math.round((samples * intervalUs) / 1000),
    startupSamples: buckets.get("start-up") ?? 0,
    /** Shares of the samples after start-up. */
    buckets: [...buckets]
      .filter(([b]) => b !== "start-up")
      .sort((a, b) => b[1] - a[1])
      .map(([bucket, n]) => ({
        bucket,
        pct: pct(n, steady),
        via: [...bucketVia.get(bucket)!]
          .sort((a, b) => b[1] - a[1])
          .slice(0, 3)
          .map(([fn, k]) => `${fn} ${pct(k, steady)}%`),
      })),
    top: [...selfFn]
      .sort((a, b) => b[1].n - a[1].n)
      .slice(0, top)
      .map(([fn, e]) => ({
        fn,
        pct: pct(e.n, steady),
        bucket: [...e.bucket].sort((a, b) => b[1] - a[1])[0]![0],
        ...(e.caller.size ? { calledFrom: [...e.caller].sort((a, b) => b[1] - a[1])[0]![0] } : {}),
      })),
  };
}

const args = process.argv.slice(2);
let top = 20;
let json = false;
const files: string[] = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--top") top = Number(args[++i]);
  else if (args[i] === "--json") json = true;
  else files.push(args[i]!);
}
if (files.length === 0) {
  console.error("usage: bun scripts/bench-profile.ts FILE.cpuprofile [...] [--top 20] [--json]");
  process.exit(2);
}
const results = files.map((f) => summarise(f, top));
if (json) console.log(JSON.stringify(results, null, 2));
else {
  for (const r of results) {
    const span = r.window
      ? `the measured load only, ${r.wallS} s`
      : `the whole run, ${r.wallS} s; ${r.startupSamples} samples at start-up left out below`;
    console.log(`## ${r.file}: ${r.samples} samples, ~${r.busyMs} ms busy on the main thread (${span})`);
    console.log("");
    console.log("| share | bucket | mostly via (nearest relay frame) |\n| ---: | --- | --- |");
    for (const b of r.buckets) console.log(`| ${b.pct}% | ${b.bucket} | ${b.via.map((v) => `\`${v}\``).join(", ")} |`);
    console.log("");
    console.log("| self | function | bucket |\n| ---: | --- | --- |");
    for (const t of r.top) {
      console.log(`| ${t.pct}% | \`${t.fn}\`${t.calledFrom ? ` ← \`${t.calledFrom}\`` : ""} | ${t.bucket} |`);
    }
    console.log("");
  }
}
