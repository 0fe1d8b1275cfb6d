/**
 * The dashboard at `/`: server-rendered pages (Hono JSX) over the same
 * services as the API, and uPlot for the charts, both inside the binary.
 *
 * Login takes the admin token or an API key with the read scope in a POST
 * body and answers with a session cookie (HttpOnly, SameSite=Strict, Secure
 * over https) that holds only a random id: the token itself is never in a
 * URL or a cookie. Every state-changing form carries the session's CSRF
 * token, and Hono's csrf() checks that the request came from this origin.
 * Only the admin scope steers; a read-scoped key sees the pages without the
 * buttons, and its POSTs are 403.
 */
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { every } from "hono/combine";
import { csrf } from "hono/csrf";
import type { JSX } from "hono/jsx/jsx-runtime";
import type { DomainService } from "../auth/domains.ts";
import type { Clock } from "../core/clock.ts";
import { parseDuration } from "../core/duration.ts";
import type { Logger } from "../core/log.ts";
import { fleetLink, type FleetSource, fleetView } from "../fleet/fleet-view.ts";
import { type Authenticator, hasScope, type Principal, senderAllowed } from "../http/auth.ts";
import type { QueueRouteDeps } from "../http/queue.ts";
import { decodeCursor, encodeCursor } from "../http/suppressions.ts";
import type { MessageSearch } from "../queue/message-search.ts";
import type { QueueStore } from "../queue/store.ts";
import { parseScope, type SuppressionStore } from "../queue/suppressions.ts";
import { dashboardAssets } from "./assets.ts";
import { Destinations } from "./destinations.tsx";
import { Domains } from "./domains.tsx";
import { Fleet } from "./fleet.tsx";
import { canSteer, formatTime, Layout, type Section } from "./layout.tsx";
import { LoginPage } from "./login.tsx";
import { MessageDetail, MessageList, MessageSearchForm } from "./messages.tsx";
import { Overview } from "./overview.tsx";
import type { EventRates } from "./rates.ts";
import { csrfMatches, type Session, type SessionLimits, SessionStore } from "./sessions.ts";
import { Suppressions } from "./suppressions.tsx";
import { type WebhookPageDeps, Webhooks } from "./webhooks.tsx";

export interface DashboardDeps {
  /** The API's own: the admin token or an API key (a session needs the read scope). */
  readonly authenticate: Authenticator;
  /** Whether a session's principal may still sign in: a key revoked since its login ends the session at once. */
  readonly stillValid: (principal: Principal) => Promise<boolean>;
  readonly clock: Clock;
  /** The overview's charts. */
  readonly rates: Pick<EventRates, "current">;
  /** The same provider as GET /v1/queue and its steering. */
  // deno-lint-ignore no-explicit-any -- the destination type is the provider's own; the pages pass it back unchanged
  readonly queue: QueueRouteDeps<any>;
  readonly messages: Pick<QueueStore, "messageView"> & Pick<MessageSearch, "search">;
  readonly suppressions: Pick<SuppressionStore, "list" | "remove">;
  readonly domains: Pick<DomainService, "list">;
  /** Webhook endpoints with their backlog and dead letters; without it, no webhooks page. */
  readonly webhooks?: WebhookPageDeps;
  /** The same source as GET /v1/fleet: the fleet page, and the banner on every page while the node is cut off. */
  readonly fleet: FleetSource;
  readonly log: Logger;
  readonly sessionLimits?: SessionLimits;
}

interface DashboardEnv {
  Variables: { session: Session; requestId: string };
}

/** The browser may run our own scripts and styles only, and no other site may frame the pages. */
const PAGE_HEADERS = {
  "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "cache-control": "no-store",
  "referrer-policy": "same-origin",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
};

/** A form is a few fields; anything larger is not ours. */
const FORM_LIMIT_BYTES = 16 * 1024;
const SEARCH_LIMIT = 50;
const SUPPRESSIONS_PAGE = 100;

const isHttps = (c: Context) => new URL(c.req.url).protocol === "https:";
/** Over https the `__Host-` prefix pins the cookie to this origin (RFC 6265bis 4.1.3.2). */
const cookieName = (c: Context) => (isHttps(c) ? "__Host-relay_session" : "relay_session");

async function render(c: Context, node: JSX.Element, status: 200 | 401 | 403 | 404 = 200): Promise<Response> {
  return c.html(`<!doctype html>\n${await node.toString()}`, status, PAGE_HEADERS);
}

const seeOther = (c: Context, to: string) => c.redirect(to, 303);

export function dashboardRoutes(deps: DashboardDeps): Hono<DashboardEnv> {
  const app = new Hono<DashboardEnv>();
  const assets = dashboardAssets();
  const sessions = new SessionStore(deps.clock, deps.sessionLimits);

  for (const asset of Object.values(assets)) {
    app.get(asset.path, (c) =>
      c.body(asset.body, 200, {
        "content-type": asset.type,
        // The name carries a hash of the content, so a new build is a new name.
        "cache-control": "public, max-age=31536000, immutable",
        "x-content-type-options": "nosniff",
      }));
  }

  /** A page of the signed-in dashboard; a GET without a session goes to the login form. */
  const signedIn: MiddlewareHandler<DashboardEnv> = async (c, next) => {
    let session = sessions.get(getCookie(c, cookieName(c)));
    if (session && !(await deps.stillValid(session.principal))) {
      sessions.end(session.id);
      session = undefined;
    }
    if (!session) {
      if (c.req.method === "GET" || c.req.method === "HEAD") return seeOther(c, "/login");
      return render(c, <LoginPage assets={assets} error="Your session has ended; log in again." />, 401);
    }
    c.set("session", session);
    await next();
  };

  /** A state-changing form: from this origin, with the session's CSRF token (and, with `admin`, from an admin). */
  const form = (needs: "session" | "admin"): MiddlewareHandler<DashboardEnv> =>
    every(
      bodyLimit({ maxSize: FORM_LIMIT_BYTES, onError: (c) => c.text("form too large", 413) }),
      csrf(),
      signedIn,
      async (c, next) => {
        const session = c.get("session");
        const body = await c.req.parseBody();
        if (!csrfMatches(session, body.csrf)) {
          return refuse(c, "This form did not come from this dashboard session (CSRF token missing or wrong).");
        }
        if (needs === "admin" && !canSteer(session)) {
          return refuse(c, "This key may look at the dashboard but not change anything: that needs the admin scope.");
        }
        await next();
      },
    );

  const refuse = (c: Context<DashboardEnv>, text: string) =>
    page(c, "overview", "Refused", <p class="notice error" role="alert">{text}</p>, 403);

  async function page(
    c: Context<DashboardEnv>,
    section: Section,
    title: string,
    content: JSX.Element,
    status: 200 | 403 | 404 = 200,
    head?: JSX.Element,
  ) {
    const session = c.get("session");
    const notice = session.flash;
    session.flash = undefined;
    const partition = deps.fleet.partitionedSince() === undefined ? undefined : await fleetLink(deps.fleet);
    return render(
      c,
      <Layout
        title={title}
        section={section}
        session={session}
        assets={assets}
        webhooks={deps.webhooks !== undefined}
        notice={notice}
        partition={partition}
        head={head}
      >
        {content}
      </Layout>,
      status,
    );
  }

  /** What an action did, for the next page; and the log line that says who did it. */
  const done = (c: Context<DashboardEnv>, to: string, text: string, error = false) => {
    c.get("session").flash = { text, error };
    if (!error) deps.log("info", `dashboard: ${text}`, { principal: c.get("session").principal.id });
    return seeOther(c, to);
  };

  app.get("/login", (c) => {
    if (sessions.get(getCookie(c, cookieName(c)))) return seeOther(c, "/");
    return render(c, <LoginPage assets={assets} />);
  });

  app.post(
    "/login",
    bodyLimit({ maxSize: FORM_LIMIT_BYTES, onError: (c) => c.text("form too large", 413) }),
    csrf(),
    async (c) => {
      const token = (await c.req.parseBody()).token;
      const principal = typeof token === "string" && token !== "" ? await deps.authenticate(token) : undefined;
      if (!principal) {
        return render(c, <LoginPage assets={assets} error="That is not the admin token or a live API key." />, 401);
      }
      if (!hasScope(principal, "read")) {
        return render(c, <LoginPage assets={assets} error="This API key lacks the read scope." />, 403);
      }
      const session = sessions.create(principal);
      setCookie(c, cookieName(c), session.id, {
        httpOnly: true,
        sameSite: "Strict",
        secure: isHttps(c),
        path: "/",
        maxAge: Math.floor((session.expiresAt - deps.clock.now()) / 1000),
      });
      return seeOther(c, "/");
    },
  );

  app.post("/logout", form("session"), (c) => {
    sessions.end(c.get("session").id);
    deleteCookie(c, cookieName(c), { path: "/", secure: isHttps(c) });
    return seeOther(c, "/login");
  });

  app.get("/", signedIn, async (c) => {
    const [rates, summary] = await Promise.all([deps.rates.current(), deps.queue.summary()]);
    return page(
      c,
      "overview",
      "Overview",
      <Overview rates={rates} destinations={summary.destinations} unrouted={summary.domains} />,
      200,
      <>
        <link rel="stylesheet" href={assets.uplotCss.path} />
        <script src={assets.uplotJs.path} defer></script>
        <script src={assets.chartsJs.path} defer></script>
      </>,
    );
  });

  app.get("/destinations", signedIn, async (c) => {
    const summary = await deps.queue.summary();
    return page(
      c,
      "destinations",
      "Destinations",
      <Destinations destinations={summary.destinations} unrouted={summary.domains} session={c.get("session")} />,
    );
  });

  app.post("/destinations/suspend", form("admin"), async (c) => {
    const body = await c.req.parseBody();
    const ms = typeof body.duration === "string" ? parseDuration(body.duration) : undefined;
    if (ms === undefined || ms <= 0) return done(c, "/destinations", "Pick how long to suspend for.", true);
    const found = await deps.queue.resolve(String(body.destination ?? ""));
    if (!found.found) return done(c, "/destinations", found.reason, true);
    const until = await deps.queue.suspend(found, deps.queue.now() + ms);
    return done(c, "/destinations", `suspended ${found.name} until ${formatTime(until)} UTC`);
  });

  app.post("/destinations/resume", form("admin"), async (c) => {
    const found = await deps.queue.resolve(String((await c.req.parseBody()).destination ?? ""));
    if (!found.found) return done(c, "/destinations", found.reason, true);
    const due = await deps.queue.resume(found);
    return done(c, "/destinations", `resumed ${found.name}; ${due} recipient(s) due now`);
  });

  app.get("/messages", signedIn, async (c) => {
    const query = (c.req.query("q") ?? "").trim();
    const principal = c.get("session").principal;
    const hits = (await deps.messages.search(query, SEARCH_LIMIT)).filter((h) => senderAllowed(principal, h.mailFrom));
    return page(
      c,
      "messages",
      "Messages",
      <>
        <MessageSearchForm query={query} />
        <MessageList query={query} hits={hits} limit={SEARCH_LIMIT} />
      </>,
    );
  });

  app.get("/messages/:id", signedIn, async (c) => {
    const id = c.req.param("id");
    const view = await deps.messages.messageView(id);
    // A message its sender domain hides from a domain-limited key is "not found" to it, as in the API.
    if (!view || !senderAllowed(c.get("session").principal, view.message.mailFrom)) {
      return page(c, "messages", "No such message", <p>No message {JSON.stringify(id)}.</p>, 404);
    }
    return page(c, "messages", `Message ${view.message.id}`, <MessageDetail view={view} />);
  });

  app.get("/suppressions", signedIn, async (c) => {
    const address = (c.req.query("address") ?? "").trim();
    const cursor = c.req.query("cursor");
    const result = await deps.suppressions.list({
      limit: SUPPRESSIONS_PAGE,
      address: address === "" ? undefined : address,
      after: cursor === undefined ? undefined : decodeCursor(cursor),
    });
    return page(
      c,
      "suppressions",
      "Suppressions",
      <Suppressions
        address={address}
        entries={result.entries}
        next={result.next ? encodeCursor(result.next) : undefined}
        session={c.get("session")}
      />,
    );
  });

  app.post("/suppressions/remove", form("admin"), async (c) => {
    const body = await c.req.parseBody();
    const address = String(body.address ?? "");
    const scopeText = typeof body.scope === "string" ? body.scope : "";
    const scope = scopeText === "" ? undefined : parseScope(scopeText);
    if (scopeText !== "" && scope === undefined) {
      return done(
        c,
        "/suppressions",
        `${JSON.stringify(scopeText)} is not a scope (global, principal:ID, domain:D)`,
        true,
      );
    }
    const removed = await deps.suppressions.remove(address, scope);
    if (removed === 0) return done(c, "/suppressions", `${address} is not on the suppression list`, true);
    return done(c, "/suppressions", `removed ${address} from the suppression list`);
  });

  app.get("/domains", signedIn, async (c) => {
    return page(c, "domains", "Sending domains", <Domains domains={await deps.domains.list()} />);
  });

  const webhooks = deps.webhooks;
  if (webhooks) {
    app.get("/webhooks", signedIn, async (c) => {
      return page(c, "webhooks", "Webhooks", <Webhooks webhooks={await webhooks.list()} />);
    });
  }

  app.get("/fleet", signedIn, async (c) => {
    return page(c, "fleet", "Fleet", <Fleet fleet={await fleetView(deps.fleet)} />);
  });
  return app;
}
