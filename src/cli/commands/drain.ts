// deno-lint-ignore-file no-explicit-any -- the API's JSON answers, printed as they come
import { UsageError } from "../../core/errors.ts";
import type { Command, CommandContext } from "../command.ts";
import { callRelay } from "../running-relay.ts";

/** How often the queue that is left is printed while the command waits. */
const REPORT_EVERY_MS = 5_000;

const USAGE = `Usage: relay drain [--no-wait] [--env-file FILE]

Take the running relay out of service without losing mail: from now on it
answers new SMTP connections and transactions "421 4.3.2" and POST
/v1/messages 503 (senders and load balancers go to another node; /readyz
answers 503), its row in the fleet registry says "draining", and it goes
on delivering its queue. The command then prints what is left every few
seconds and exits 0 once the queue is empty: stop the node then
(systemctl stop relay).

With RELAY_DURABILITY=local (the only durability today) the node delivers
its own queue: no other node has its messages.

Deferred recipients wait for their next attempt, which may be hours away:
"relay queue retry DESTINATION" makes them due now; held ones stay until
"relay queue release" or "relay queue bounce". Ctrl-C stops watching, not
the drain: it lasts until the relay stops. A restarted relay accepts mail
again.

  --no-wait  start the drain (or find it in force), print what is left, exit.

This command talks to the relay serving from this RELAY_DATA_DIR through
its HTTP API, with the URL and token it writes to control.json there.`;

export const drainCommand: Command = {
  name: "drain",
  summary: "stop accepting mail, deliver the queue, report when it is empty",
  usage: USAGE,
  options: { "no-wait": { type: "boolean" } },
  async run(context) {
    if (context.positionals.length > 0) {
      throw new UsageError([`drain: unexpected argument ${JSON.stringify(context.positionals[0])}`]);
    }
    const started = await callRelay(context, "POST", "/v1/drain");
    if (started === undefined) return 1;
    context.print(
      `relay: ${started.node} is draining since ${started.since}: new mail is refused, ` +
        (started.hands_over ? "its queue goes to the other nodes" : "it delivers its queue"),
    );
    if (context.options["no-wait"] === true) {
      context.print(leftLine(started.left));
      return 0;
    }
    return await watch(context, started);
  },
};

/** Print what is left until nothing is; 0 then, 1 when the relay stops answering or no longer drains. */
async function watch(context: CommandContext, first: any): Promise<number> {
  const hinted = new Set<string>();
  let state = first;
  for (;;) {
    if (!state.draining) {
      console.error(`relay: ${state.node} no longer drains (it was restarted): it accepts mail again`);
      return 1;
    }
    if (state.left.total === 0) {
      context.print(`relay: ${state.node} is drained: its queue is empty; stop it now`);
      return 0;
    }
    context.print(leftLine(state.left));
    for (const hint of hintsFor(state.left)) {
      if (hinted.has(hint)) continue;
      hinted.add(hint);
      context.print(hint);
    }
    await new Promise((done) => setTimeout(done, REPORT_EVERY_MS));
    state = await callRelay(context, "GET", "/v1/drain");
    if (state === undefined) return 1;
  }
}

function leftLine(left: any): string {
  return `relay: ${left.total} recipient(s) left: ${left.queued} queued, ${left.deferred} deferred, ${left.held} held`;
}

/** What the operator may do about what stays, said once each. */
function hintsFor(left: any): string[] {
  const hints: string[] = [];
  if (left.deferred > 0) {
    hints.push(
      "relay: deferred recipients wait for their next attempt: relay queue retry DESTINATION makes them due now " +
        "(relay queue summary lists them); Ctrl-C stops watching, the drain goes on",
    );
  }
  if (left.held > 0) {
    hints.push("relay: held recipients stay until relay queue release or relay queue bounce");
  }
  return hints;
}
