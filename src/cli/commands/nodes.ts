import { nodeStatus, registryOf } from "../../app/fleet.ts";
import { UsageError } from "../../core/errors.ts";
import type { Command } from "../command.ts";
import { printTable } from "./users.ts";

const USAGE = `Usage:
  relay nodes list [--json]
  relay nodes remove ID

The fleet's node registry (the shared server's, RELAY_SHARED_DB_URL; the
node's own database when it runs alone): each node writes its row at start,
every 10 s and at stop, and every node's RELAY_SOURCE_IP is in the SPF
record that "relay domains check" prints.

  list    one node a line: id, status (up, draining, stopped, or down: no
          heartbeat for RELAY_NODE_DEAD_AFTER), source IP, host name,
          version, last heartbeat (UTC), recipients in its queue then.
  remove  take a node that left the fleet out of the registry, so that its
          IP leaves the SPF record. Refused while it runs (up or draining):
          drain it (relay drain on that node), stop it, then remove it. A
          node started again writes its row again.

Options: --env-file FILE loads RELAY_* defaults from a file.`;

export const nodesCommand: Command = {
  name: "nodes",
  takesArguments: true,
  summary: "the fleet's node registry: list, remove ID (a node that left the fleet)",
  usage: USAGE,
  options: { json: { type: "boolean" } },
  async run(context) {
    const [action, ...rest] = context.positionals;
    if (action !== "list" && action !== "remove") {
      const what = action === undefined ? "missing action" : `unknown action ${JSON.stringify(action)}`;
      throw new UsageError([`nodes: ${what}: expected list or remove; see "relay nodes --help"`]);
    }
    if (action === "remove" && context.options.json !== undefined) {
      throw new UsageError(["nodes remove: --json does not apply"]);
    }
    const { nodeDeadAfter } = context.config();
    if (action === "list") {
      if (rest.length > 0) throw new UsageError([`nodes list: unexpected argument ${JSON.stringify(rest[0])}`]);
      return await context.withServices(async (services) => {
        const now = services.clock.now();
        const nodes = (await registryOf(services).list()).map((n) => ({
          id: n.id,
          status: nodeStatus(n, nodeDeadAfter, now),
          source_ip: n.sourceIp,
          hostname: n.hostname,
          version: n.version,
          heartbeat_at: new Date(n.heartbeatAt).toISOString(),
          queue_depth: n.queueDepth,
        }));
        if (context.options.json) context.print(JSON.stringify(nodes));
        else if (nodes.length === 0) context.print("relay: no nodes");
        else {
          printTable(
            context,
            nodes.map((n) => [
              n.id,
              n.status,
              n.source_ip ?? "-",
              n.hostname,
              n.version,
              n.heartbeat_at,
              String(n.queue_depth),
            ]),
          );
        }
        return 0;
      });
    }
    if (rest.length !== 1) throw new UsageError(["expected: relay nodes remove ID"]);
    const id = rest[0]!;
    return await context.withServices(async (services) => {
      const registry = registryOf(services);
      const node = await registry.get(id);
      if (!node) {
        console.error(`relay: no node ${JSON.stringify(id)} in the registry ("relay nodes list" lists them)`);
        return 1;
      }
      const status = nodeStatus(node, nodeDeadAfter, services.clock.now());
      if (status === "up" || status === "draining") {
        console.error(
          `relay: ${id} is ${status}: drain it (relay drain on that node), stop it, then remove it; ` +
            "a running node writes its row again",
        );
        return 1;
      }
      await registry.remove(id);
      context.print(`relay: removed ${id} (${status}) from the registry: its IP leaves the SPF record`);
      if (node.queueDepth > 0) {
        context.print(
          `relay: its last heartbeat counted ${node.queueDepth} recipient(s) in its queue: they wait on its disk ` +
            "until it runs again (RELAY_DURABILITY=local)",
        );
      }
      return 0;
    });
  },
};
