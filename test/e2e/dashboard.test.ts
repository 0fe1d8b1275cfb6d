// deno-lint-ignore-file no-explicit-any -- JSON answers are checked by assertions, not by types
/**
 * The dashboard in a real browser: Debian's chromium driven by
 * playwright-core against the real relay. Log in with the admin token, read
 * the charts (drawn, and drawn from non-zero counts), find a message and open
 * it with its attempt, suspend and resume a destination (the state checked
 * through GET /v1/queue); a read-only key sees no buttons and its POST is
 * refused, and so is a POST without the session's CSRF token or from another
 * origin. The fleet page lists the node as GET /v1/fleet does, and a fleet
 * node cut off from its sqld says so on every page until sqld is back.
 * Screenshots go to docs/screenshots/ (linked from the README).
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { sqldMissing, startSqld } from "../fixtures/sqld.ts";
import { NOT_INSTALLED, peerMissing } from "../helpers/peers.ts";
import { freePort, type RelayProcess, repoRoot, runRelay, testBinary } from "../helpers/relay-process.ts";
import { waitUntil } from "../helpers/wait-until.ts";
import { startWorld, type World } from "../helpers/world.ts";

const CHROMIUM = "/usr/bin/chromium";
const chromiumMissing = peerMissing(CHROMIUM, "chromium", !existsSync(CHROMIUM) && NOT_INSTALLED);
const SCREENSHOTS = join(repoRoot, "docs", "screenshots");
const BROWSER_TEST = { timeout: 120_000, skip: chromiumMissing };

let world: World;
let browser: Browser;
let readKey: string;
let readKeyId: string;
const contexts: BrowserContext[] = [];

async function newPage(): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  contexts.push(context);
  return context.newPage();
}

async function logIn(page: Page, token: string, relay: RelayProcess = world.relay): Promise<void> {
  await page.goto(relay.url("/"));
  assert.equal(new URL(page.url()).pathname, "/login", "a visit without a session goes to the login form");
  await page.fill("#token", token);
  await Promise.all([page.waitForURL(relay.url("/")), page.click("button[type=submit]")]);
}

async function send(to: string): Promise<string> {
  const sent = await world.api("POST", "/v1/messages", { from: "a@sender.test", to: [to], subject: "s", text: "x" });
  assert.equal(sent.status, 202, JSON.stringify(sent.json));
  return sent.json.id;
}

/** GET /v1/queue's entry for the destination of dest.test. */
async function destination(): Promise<any> {
  const summary = await world.api("GET", "/v1/queue");
  return summary.json.destinations.find((d: any) => d.mx_hosts[0] === "mx.dest.test");
}

/**
 * The vertical extent, in pixels, of what the chart drew in a series' colour:
 * a line that rises from zero spans many pixels, one flat at zero a few.
 */
function drawnHeight(page: Page, figure: string, rgb: [number, number, number]): Promise<number> {
  return page.$eval(`${figure} canvas`, (canvas: any, [red, green, blue]: [number, number, number]) => {
    const { width, height } = canvas;
    const pixels = canvas.getContext("2d").getImageData(0, 0, width, height).data;
    let top = Infinity;
    let bottom = -Infinity;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const i = (y * width + x) * 4;
        const near = Math.abs(pixels[i] - red) + Math.abs(pixels[i + 1] - green) + Math.abs(pixels[i + 2] - blue);
        if (pixels[i + 3] > 200 && near < 30) {
          top = Math.min(top, y);
          bottom = Math.max(bottom, y);
        }
      }
    }
    return bottom < top ? 0 : bottom - top;
  }, rgb);
}

describe("the dashboard in chromium", { skip: chromiumMissing }, () => {
  let deliveredId: string;

  before(async () => {
    if (chromiumMissing) return;
    // Retries an hour apart: the deferred recipient stays deferred while the test looks at it.
    world = await startWorld({
      binary: testBinary,
      // A webhook endpoint on loopback (a closed port): the webhooks page shows its backlog.
      env: { RELAY_RETRY_SCHEDULE: "1h", RELAY_WEBHOOK_ALLOW_PRIVATE: "true" },
    });
    const created = await runRelay(["keys", "create", "--name", "viewer", "--scope", "read"], {
      dataDir: world.relay.dataDir,
      binary: testBinary,
    });
    assert.equal(created.code, 0, created.stderr);
    readKey = /^token: (\S+)$/m.exec(created.stdout)![1]!;
    readKeyId = /^id: (\S+)$/m.exec(created.stdout)![1]!;
    deliveredId = await send("carol@dest.test");
    await send("tempfail@dest.test");
    await send("permfail@dest.test");
    // Settled: carol delivered, tempfail deferred (next try in an hour), permfail bounced and its DSN delivered.
    await waitUntil(world.events, (all) => all.filter((e) => e.type === "delivered").length === 2, {
      what: "the message and the DSN delivered",
      timeout: 30_000,
    });
    await world.waitForEvent((e) => e.type === "deferred");
    browser = await chromium.launch({ executablePath: CHROMIUM });
    mkdirSync(SCREENSHOTS, { recursive: true });
  });

  after(async () => {
    for (const context of contexts) await context.close();
    await browser?.close();
    await world?.close();
  });

  it("logs in with the admin token and draws the charts from the event counts", BROWSER_TEST, async () => {
    const page = await newPage();
    const problems: string[] = [];
    page.on("console", (m) => m.type() === "error" && problems.push(m.text()));
    page.on("pageerror", (e) => problems.push(e.message));
    await logIn(page, world.relay.adminToken);
    assert.equal(await page.textContent("h1"), "Overview");

    await page.waitForFunction('document.querySelectorAll("figure.chart canvas").length === 4');
    const rates = JSON.parse((await page.textContent("#rates"))!);
    const total = (series: any, type: string) => series.counts[type].reduce((a: number, b: number) => a + b, 0);
    const logged = await world.events();
    for (const type of ["received", "delivered", "deferred", "bounced"]) {
      const count = logged.filter((e) => e.type === type).length;
      assert.ok(count > 0);
      assert.equal(total(rates.hour, type), count, `${type} in the last hour's chart, as in the event log`);
      assert.equal(total(rates.day, type), count, `${type} in the last day's chart, as in the event log`);
    }
    // received (#0b5cad) and delivered (#1a7f37) rise from the zero line in both throughput charts.
    for (const figure of ["#hour-throughput", "#day-throughput"]) {
      assert.ok(await drawnHeight(page, figure, [11, 92, 173]) > 20, `${figure}: received is drawn above zero`);
      assert.ok(await drawnHeight(page, figure, [26, 127, 55]) > 20, `${figure}: delivered is drawn above zero`);
    }
    assert.ok(await drawnHeight(page, "#hour-outcomes", [207, 34, 46]) > 20, "bounced is drawn above zero");
    assert.equal(await page.textContent("#deferred"), "1", "the queue's depth: one recipient deferred");
    assert.deepEqual(problems, [], "no script error, nothing the content security policy blocked");
    await page.screenshot({ path: join(SCREENSHOTS, "overview.png"), fullPage: true });
  });

  it("finds a message by its recipient and shows it with its attempt", BROWSER_TEST, async () => {
    const page = await newPage();
    await logIn(page, world.relay.adminToken);
    await page.click("nav >> text=Messages");
    await page.fill("#q", "CAROL@dest.test");
    await Promise.all([page.waitForURL(/\/messages\?q=/), page.click("form[role=search] button")]);
    const link = page.locator(`#message-results a[href="/messages/${deliveredId}"]`);
    assert.equal(await link.count(), 1);
    await Promise.all([page.waitForURL(world.relay.url(`/messages/${deliveredId}`)), link.click()]);
    const attempt = page.locator("#attempts tbody tr");
    assert.equal(await attempt.count(), 1);
    const text = (await attempt.textContent())!;
    assert.match(text, /carol@dest\.test/);
    assert.match(text, /delivered/);
    assert.match(text, /250/, "the reply the destination gave");
    assert.match((await page.textContent("#recipients"))!, /delivered/);
    await page.screenshot({ path: join(SCREENSHOTS, "message.png"), fullPage: true });
  });

  it("suspends and resumes a destination, as GET /v1/queue shows", BROWSER_TEST, async () => {
    const page = await newPage();
    await logIn(page, world.relay.adminToken);
    await page.click("nav >> text=Destinations");
    const name = (await destination()).name;
    const row = page.locator(`tr[data-destination="${name}"]`);
    await row.locator("select[name=duration]").selectOption("4h");
    await Promise.all([
      page.waitForURL(world.relay.url("/destinations")),
      row.getByRole("button", { name: /^Suspend/ }).click(),
    ]);
    assert.match((await page.textContent("[role=status]"))!, new RegExp(`suspended ${name.replace(".", "\\.")} until`));
    const suspended = await destination();
    assert.equal(suspended.state, "suspended");
    const hours = (Date.parse(suspended.suspended_until) - Date.now()) / 3_600_000;
    assert.ok(hours > 3.5 && hours <= 4, `suspended for the 4h picked, until ${suspended.suspended_until}`);
    assert.match((await row.textContent())!, /suspended/);
    await page.screenshot({ path: join(SCREENSHOTS, "destinations.png"), fullPage: true });

    await Promise.all([
      page.waitForURL(world.relay.url("/destinations")),
      row.getByRole("button", { name: /^Resume/ }).click(),
    ]);
    assert.match((await page.textContent("[role=status]"))!, /resumed .* recipient\(s\) due now/);
    assert.equal((await destination()).state, "normal");
  });

  it("lists webhook endpoints with the events they have not taken", BROWSER_TEST, async () => {
    const closed = await freePort();
    const url = `http://127.0.0.1:${closed}/hook`;
    const registered = await world.api("POST", "/v1/webhooks", { url, events: ["*"] });
    assert.equal(registered.status, 201, JSON.stringify(registered.json));
    // An endpoint takes the events written after it was registered.
    await send("hooked@dest.test");
    await waitUntil(
      async () => (await world.api("GET", `/v1/webhooks/${registered.json.id}`)).json.backlog,
      (n) => n > 0,
      {
        what: "the new message's events waiting for the closed port",
        timeout: 30_000,
      },
    );
    const page = await newPage();
    await logIn(page, world.relay.adminToken);
    await page.click("nav >> text=Webhooks");
    const row = page.locator("#webhooks tbody tr", { hasText: url });
    assert.equal(await row.count(), 1);
    // Endpoint, events, backlog, dead letters, ...: the closed port has taken none of them.
    const backlog = Number(await row.locator("td").nth(2).textContent());
    assert.ok(backlog > 0, `backlog ${backlog}`);
    await page.screenshot({ path: join(SCREENSHOTS, "webhooks.png"), fullPage: true });
  });

  it("lists the node, alone, on the fleet page as GET /v1/fleet does", BROWSER_TEST, async () => {
    const fleet = (await world.api("GET", "/v1/fleet")).json;
    assert.equal(fleet.shared, false);
    assert.equal(fleet.nodes.length, 1);
    const node = fleet.nodes[0];
    const page = await newPage();
    await logIn(page, world.relay.adminToken);
    await page.click("nav >> text=Fleet");
    assert.equal(await page.textContent("h1"), "Fleet");
    assert.ok((await page.textContent("#fleet-link"))!.startsWith(`This node (${node.id}) runs alone`));
    const rows = page.locator("#fleet tbody tr");
    assert.equal(await rows.count(), 1);
    const row = page.locator(`#fleet tbody tr[data-node="${node.id}"]`);
    const cells = await row.locator("td").allTextContents();
    assert.deepEqual(
      cells.slice(0, 5),
      [`${node.id} (this node)`, node.status, node.source_ip ?? "—", node.hostname, node.version],
    );
    assert.equal(node.status, "up");
    assert.equal(await row.locator("td").nth(5).locator("time").getAttribute("datetime"), node.started_at);
    assert.match(
      cells[6]!,
      /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \((\d+[dhms] ?)+ ago\)$/,
      "the last heartbeat, how long ago",
    );
    // A heartbeat between the API's answer and the page's may have counted the queue again: either count is right.
    const after = (await world.api("GET", "/v1/fleet")).json.nodes[0];
    assert.ok(
      [String(node.queue_depth), String(after.queue_depth)].includes(cells[7]!),
      `queue depth ${cells[7]}, the API's ${node.queue_depth} then ${after.queue_depth}`,
    );
    assert.equal(await page.locator("#partition").count(), 0, "a node alone is never cut off");
  });

  it("says on every page that a fleet node is cut off from sqld, and since when, until it is back", {
    ...BROWSER_TEST,
    skip: chromiumMissing ?? sqldMissing,
  }, async () => {
    const sqld = await startSqld();
    // Heartbeats every 500 ms: the node finds the partition, and its end, within a second.
    const fleetWorld = await startWorld({
      binary: testBinary,
      env: {
        RELAY_NODE_ID: "node-a",
        RELAY_SHARED_DB_URL: sqld.url,
        RELAY_NODE_DEAD_AFTER: "3s",
        RELAY_SUPPRESS_BOUNCE_CATEGORIES: "bad-mailbox",
      },
    }).catch(async (error) => {
      await sqld.close();
      throw error;
    });
    try {
      const page = await newPage();
      await logIn(page, fleetWorld.relay.adminToken, fleetWorld.relay);
      await page.goto(fleetWorld.relay.url("/fleet"));
      assert.match((await page.textContent("#fleet-link"))!, /shares the fleet's state .*; 0 writes waiting/);
      assert.equal(await page.locator("#partition").count(), 0);

      await sqld.stop();
      // A hard bounce's suppression is a shared write: it waits in the outbox.
      const bounced = await fleetWorld.api("POST", "/v1/messages", {
        from: "a@sender.test",
        to: ["nouser@dest.test"],
        subject: "s",
        text: "x",
      });
      assert.equal(bounced.status, 202, JSON.stringify(bounced.json));
      const fleet = (await waitUntil(
        () => fleetWorld.api("GET", "/v1/fleet"),
        (r) => r.json.partitioned_since !== null && r.json.outbox === 1,
        { what: "the node partitioned, one write in its outbox", timeout: 20_000 },
      )).json;
      for (const path of ["/", "/messages", "/fleet"]) {
        await page.goto(fleetWorld.relay.url(path));
        const banner = page.locator("#partition");
        assert.match(
          (await banner.textContent())!,
          /^This node \(node-a\) is cut off from the fleet's shared database since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \((\d+[dhms] ?)+\): working from its replica; 1 write waiting\.$/,
          path,
        );
        assert.equal(await banner.locator("time").getAttribute("datetime"), fleet.partitioned_since, path);
      }
      assert.match((await page.textContent("#fleet-link"))!, /cut off .* 1 write waiting in its outbox/);
      await page.screenshot({ path: join(SCREENSHOTS, "fleet.png"), fullPage: true });

      await sqld.start();
      await waitUntil(
        async () => {
          await page.goto(fleetWorld.relay.url("/"));
          return await page.locator("#partition").count();
        },
        (count) => count === 0,
        { what: "the banner gone once sqld is back", timeout: 20_000 },
      );
      assert.equal((await fleetWorld.api("GET", "/v1/fleet")).json.partitioned_since, null);
    } finally {
      await fleetWorld.close();
      await sqld.close();
    }
  });

  it("refuses a POST without the session's CSRF token, or from another origin", BROWSER_TEST, async () => {
    const page = await newPage();
    await logIn(page, world.relay.adminToken);
    const name = (await destination()).name;
    const origin = new URL(world.relay.url("/")).origin;
    const noToken = await page.request.post(world.relay.url("/destinations/suspend"), {
      form: { destination: name, duration: "1h" },
      headers: { origin },
    });
    assert.equal(noToken.status(), 403);
    assert.match(await noToken.text(), /CSRF token missing or wrong/);

    await page.click("nav >> text=Destinations");
    const csrf = await page.locator("input[name=csrf]").first().inputValue();
    const otherOrigin = await page.request.post(world.relay.url("/destinations/suspend"), {
      form: { destination: name, duration: "1h", csrf },
      headers: { origin: "http://attacker.example" },
    });
    assert.equal(otherOrigin.status(), 403);
    assert.equal((await destination()).state, "normal", "neither suspended it");
  });

  it("lets a read-scoped key look but not steer, until it is revoked", BROWSER_TEST, async () => {
    const page = await newPage();
    await logIn(page, readKey);
    assert.match((await page.textContent("header .who"))!, /read only/);
    await page.click("nav >> text=Destinations");
    const name = (await destination()).name;
    assert.equal(await page.locator(`tr[data-destination="${name}"]`).count(), 1, "it sees the destination");
    assert.equal(await page.getByRole("button", { name: /^Suspend/ }).count(), 0, "and no button to suspend it");
    const csrf = await page.locator("input[name=csrf]").first().inputValue();
    const refused = await page.request.post(world.relay.url("/destinations/suspend"), {
      form: { destination: name, duration: "1h", csrf },
      headers: { origin: new URL(world.relay.url("/")).origin },
    });
    assert.equal(refused.status(), 403);
    assert.match(await refused.text(), /needs the admin scope/);
    assert.equal((await destination()).state, "normal");

    const revoked = await runRelay(["keys", "revoke", readKeyId], { dataDir: world.relay.dataDir, binary: testBinary });
    assert.equal(revoked.code, 0, revoked.stderr);
    await page.goto(world.relay.url("/destinations"));
    assert.equal(new URL(page.url()).pathname, "/login", "the session of a revoked key ends at its next request");
  });

  it("turns away a wrong token at the login form", BROWSER_TEST, async () => {
    const page = await newPage();
    await page.goto(world.relay.url("/login"));
    await page.fill("#token", "not-a-token");
    await page.click("button[type=submit]");
    await page.waitForSelector("[role=alert]");
    assert.equal(new URL(page.url()).pathname, "/login");
    assert.match((await page.textContent("[role=alert]"))!, /not the admin token or a live API key/);
    const cookies = await page.context().cookies();
    assert.deepEqual(cookies, [], "no session cookie");
    await page.screenshot({ path: join(SCREENSHOTS, "login.png") });
  });
});
