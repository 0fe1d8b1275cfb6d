/**
 * The unsubscribe endpoint under RELAY_PUBLIC_URL (src/unsubscribe/):
 * `POST /u/:token` with `List-Unsubscribe=One-Click` is RFC 8058's one-click
 * (no authentication, no cookies, answered at once); `GET` shows a page
 * whose button sends that same POST. A GET never unsubscribes: mail
 * scanners follow links (RFC 8058 1). The token is the only secret: the
 * answers are not cached and send no Referer on.
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { Context } from "hono";
import type { UnsubscribeResult, UnsubscribeVia } from "../unsubscribe/unsubscribe.ts";

export interface UnsubscribeRouteDeps {
  knows(token: string): Promise<boolean>;
  unsubscribeByToken(token: string, via: UnsubscribeVia): Promise<UnsubscribeResult>;
}

/** RFC 8058 3.1: the POST body's one key and value. */
const ONE_CLICK_KEY = "List-Unsubscribe";
const ONE_CLICK_VALUE = "One-Click";
/** The page's own button says so, so that the event can tell a click on the page from a receiver's one-click. */
const VIA_PAGE_KEY = "via";

export function unsubscribeRoutes(deps: UnsubscribeRouteDeps): Hono {
  const app = new Hono();
  app.use("*", async (c, next) => {
    await next();
    c.header("Cache-Control", "no-store");
    c.header("Referrer-Policy", "no-referrer");
  });
  app.get("/:token", async (c) => {
    const token = c.req.param("token");
    if (!(await deps.knows(token))) {
      return page(c, 404, "Unknown link", "<p>This unsubscribe link is not known here.</p>");
    }
    return page(
      c,
      200,
      "Unsubscribe",
      `<p>Unsubscribe from this sender's mailing?</p>
<form method="post" action="">
<input type="hidden" name="${ONE_CLICK_KEY}" value="${ONE_CLICK_VALUE}">
<input type="hidden" name="${VIA_PAGE_KEY}" value="page">
<button type="submit">Unsubscribe</button>
</form>`,
    );
  });
  app.post(
    "/:token",
    bodyLimit({ maxSize: 4096, onError: (c) => c.text("request body too large", 413) }),
    async (c) => {
      const form = await c.req.parseBody().catch(() => undefined);
      if (form?.[ONE_CLICK_KEY] !== ONE_CLICK_VALUE) {
        return c.text(`expected a form body ${ONE_CLICK_KEY}=${ONE_CLICK_VALUE} (RFC 8058)`, 400);
      }
      const via = form[VIA_PAGE_KEY] === "page" ? "page" : "one-click";
      const result = await deps.unsubscribeByToken(c.req.param("token"), via);
      if (result === "unknown") return page(c, 404, "Unknown link", "<p>This unsubscribe link is not known here.</p>");
      return page(c, 200, "Unsubscribed", "<p>You are unsubscribed.</p>");
    },
  );
  return app;
}

function page(c: Context, status: 200 | 404, title: string, content: string): Response {
  return c.html(
    `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<meta name="robots" content="noindex"><title>${title}</title></head>
<body><h1>${title}</h1>
${content}
</body></html>
`,
    status,
  );
}
