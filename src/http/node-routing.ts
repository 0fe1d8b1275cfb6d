import type { Context, MiddlewareHandler } from "hono";
import type { NodeRecord } from "../fleet/node-registry.ts";
import type { AuthEnv } from "./auth.ts";
import { problem } from "./problem.ts";

export interface NodeRoutingDeps {
  /** This node's id (RELAY_NODE_ID). */
  readonly self: string;
  readonly nodes: () => Promise<readonly NodeRecord[]>;
  /** Whether a node answers now (up or draining: not stopped, not silent past RELAY_NODE_DEAD_AFTER). */
  readonly answers: (node: NodeRecord) => boolean;
  /** Deadline of one request to another node. */
  readonly timeoutMs: number;
  /** Default: the global fetch. */
  readonly fetch?: typeof fetch;
}

/**
 * `?node=ID` and `?node=all` on the queue and event reads: a node's queue
 * and events live in its own database, so the question goes to the node
 * that has them, at its RELAY_NODE_URL, with the caller's own credentials
 * (API keys and a generated admin token are the fleet's). `ID` answers as
 * that node would (X-Relay-Node says which); `all` asks every node that
 * answers and lists each one's answer, or why there is none, side by side:
 * `{ "nodes": [{ "node": ID, "status": 200, "body": ... }] }`. Without
 * `node`, or naming this node, the request is answered here.
 */
export function nodeRouting(deps: NodeRoutingDeps): MiddlewareHandler<AuthEnv> {
  const send = deps.fetch ?? fetch;
  const forward = async (c: Context<AuthEnv>, node: NodeRecord) => {
    const url = new URL(c.req.url);
    url.searchParams.delete("node");
    const target = `${node.apiUrl}${url.pathname}${url.search}`;
    return await send(target, {
      headers: { authorization: c.req.header("authorization") ?? "" },
      signal: AbortSignal.timeout(deps.timeoutMs),
    });
  };
  return async (c, next) => {
    const wanted = c.req.query("node");
    if (wanted === undefined || wanted === deps.self || c.req.method !== "GET") return await next();
    const nodes = await deps.nodes();
    if (wanted === "all") {
      const answers = await Promise.all(
        nodes.filter(deps.answers).map(async (node) => {
          if (node.apiUrl === null) return { node: node.id, error: "the node has no RELAY_NODE_URL" };
          try {
            const response = await forward(c, node);
            return { node: node.id, status: response.status, body: await response.json() as unknown };
          } catch (error) {
            return { node: node.id, error: `unreachable at ${node.apiUrl}: ${(error as Error).message}` };
          }
        }),
      );
      return c.json({ nodes: answers });
    }
    const node = nodes.find((n) => n.id === wanted);
    if (!node) return problem(c, 404, "Not Found", `no node ${wanted} in the fleet's registry (GET /v1/fleet)`);
    if (!deps.answers(node) || node.apiUrl === null) {
      return problem(c, 502, "Node unavailable", `node ${wanted} is not up, or has no RELAY_NODE_URL`);
    }
    try {
      const response = await forward(c, node);
      return new Response(response.body, {
        status: response.status,
        headers: {
          "content-type": response.headers.get("content-type") ?? "application/json",
          "x-relay-node": node.id,
        },
      });
    } catch (error) {
      return problem(c, 502, "Node unavailable", `node ${wanted} at ${node.apiUrl}: ${(error as Error).message}`);
    }
  };
}
