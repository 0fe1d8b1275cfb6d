import type { Child } from "hono/jsx";
import type { FleetLink } from "../fleet/fleet-view.ts";
import type { Assets } from "./assets.ts";
import type { Session } from "./sessions.ts";

/** The dashboard's sections, in the order of the navigation. */
export type Section = "overview" | "destinations" | "messages" | "suppressions" | "domains" | "webhooks" | "fleet";

const SECTIONS: readonly { readonly id: Section; readonly href: string; readonly label: string }[] = [
  { id: "overview", href: "/", label: "Overview" },
  { id: "destinations", href: "/destinations", label: "Destinations" },
  { id: "messages", href: "/messages", label: "Messages" },
  { id: "suppressions", href: "/suppressions", label: "Suppressions" },
  { id: "domains", href: "/domains", label: "Domains" },
  { id: "webhooks", href: "/webhooks", label: "Webhooks" },
  { id: "fleet", href: "/fleet", label: "Fleet" },
];

export interface PageProps {
  readonly title: string;
  readonly assets: Assets;
  readonly children?: Child;
  /** Extra files in the head (the overview's charts). */
  readonly head?: Child;
}

/** The HTML document around every page. */
export function Document(props: PageProps) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="robots" content="noindex" />
        <title>{props.title} · relay</title>
        {/* No icon: the browser would ask for /favicon.ico. */}
        <link rel="icon" href="data:," />
        <link rel="stylesheet" href={props.assets.css.path} />
        {props.head}
      </head>
      <body>{props.children}</body>
    </html>
  );
}

export interface LayoutProps extends PageProps {
  readonly section: Section;
  readonly session: Session;
  /** Whether the webhooks page is served (a webhook service was given). */
  readonly webhooks: boolean;
  /** What the last action did (post/redirect/get). */
  readonly notice?: Session["flash"];
  /** This node's link to the fleet's shared server, given while it is cut off from it. */
  readonly partition?: FleetLink;
}

/** A signed-in page: navigation, who is signed in, the notice of the last action, the content. */
export function Layout(props: LayoutProps) {
  const { session, notice } = props;
  return (
    <Document title={props.title} assets={props.assets} head={props.head}>
      <header class="top">
        <a class="brand" href="/">relay</a>
        <nav aria-label="Sections">
          <ul>
            {SECTIONS.filter((s) => s.id !== "webhooks" || props.webhooks).map((s) => (
              <li>
                <a href={s.href} aria-current={s.id === props.section ? "page" : undefined}>{s.label}</a>
              </li>
            ))}
          </ul>
        </nav>
        <div class="who">
          <span>
            {session.principal.id === "admin" ? "admin token" : `API key ${session.principal.id}`}
            {canSteer(session) ? "" : " (read only)"}
          </span>
          <form class="inline" method="post" action="/logout">
            <CsrfField session={session} />
            <button type="submit" class="secondary">Log out</button>
          </form>
        </div>
      </header>
      {props.partition && <PartitionBanner link={props.partition} />}
      <main>
        <h1>{props.title}</h1>
        {notice && <p class={notice.error ? "notice error" : "notice"} role="status">{notice.text}</p>}
        {props.children}
      </main>
    </Document>
  );
}

/** Said on every page while the node cannot reach the fleet's shared server (it still accepts and delivers). */
export function PartitionBanner(props: { link: FleetLink }) {
  const { self, partitionedSince, outbox, now } = props.link;
  if (partitionedSince === undefined) return null;
  return (
    <p class="banner" id="partition" role="alert">
      This node ({self}) is cut off from the fleet's shared database since <Time ms={partitionedSince} /> UTC
      {` (${formatElapsed(now - partitionedSince)}): working from its replica; ${writesWaiting(outbox)}.`}
    </p>
  );
}

/** The outbox: writes for the shared state that wait on this node for the shared server. */
export function writesWaiting(outbox: number | undefined): string {
  return `${outbox ?? 0} ${outbox === 1 ? "write" : "writes"} waiting`;
}

/** The session's CSRF token, which every state-changing form sends back. */
export function CsrfField(props: { session: Session }) {
  return <input type="hidden" name="csrf" value={props.session.csrf} />;
}

/** Admin may steer (suspend, resume, remove); a read-scoped key may only look. */
export function canSteer(session: Session): boolean {
  return session.principal.scopes.includes("admin");
}

/** A state as a coloured word. */
export function State(props: { value: string }) {
  return <span class={`state state-${props.value}`}>{props.value.replace("_", " ")}</span>;
}

const pad = (n: number) => String(n).padStart(2, "0");

/** A time in UTC, to the second: `2026-12-06 22:01:37`. */
export function formatTime(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "—";
  const d = new Date(ms);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${
    pad(d.getUTCMinutes())
  }:${pad(d.getUTCSeconds())}`;
}

const ELAPSED_UNITS = [["d", 86_400_000], ["h", 3_600_000], ["m", 60_000], ["s", 1000]] as const;

/** How long, to its two largest units: `45s`, `3m 5s`, `2h 10m`, `4d 1h`. */
export function formatElapsed(ms: number): string {
  const parts: string[] = [];
  let rest = Math.max(0, ms);
  for (const [unit, size] of ELAPSED_UNITS) {
    if (parts.length === 0 && rest < size && unit !== "s") continue;
    parts.push(`${Math.floor(rest / size)}${unit}`);
    rest %= size;
    if (parts.length === 2) break;
  }
  return parts.join(" ");
}

export function Time(props: { ms: number | null | undefined }) {
  if (props.ms === null || props.ms === undefined) return <span class="muted">—</span>;
  return <time datetime={new Date(props.ms).toISOString()}>{formatTime(props.ms)}</time>;
}
