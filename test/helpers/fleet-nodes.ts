import { freePorts, type RelayProcess, startRelay } from "./relay-process.ts";
import { type RelayApi, relayApi } from "./world.ts";

/** One relay node of a test fleet: its id, the loopback address it owns, the process and its API. */
export interface FleetNode extends RelayApi {
  readonly id: string;
  readonly ip: string;
  /** Its environment besides the listeners (RELAY_NODE_ID and RELAY_SOURCE_IP included). */
  readonly env: Record<string, string>;
  relay: RelayProcess;
}

const ADDRESSES = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];

async function startNode(ip: string, env: Record<string, string>, previous?: RelayProcess): Promise<RelayProcess> {
  const [smtpPort, httpPort] = previous ? [previous.smtpPort, previous.httpPort] : await freePorts(2);
  return await startRelay({
    smtpPort,
    httpPort,
    dataDir: previous?.dataDir,
    adminToken: previous?.adminToken,
    env: { ...env, RELAY_SMTP_LISTEN: `${ip}:${smtpPort}` },
  });
}

/**
 * Three nodes, node-1 to node-3 on 127.0.0.2 to .4, each sending from and
 * listening on its own address, with `env(ip, id)`. Started together: they
 * race to migrate the shared server, as a fleet's nodes booted at once do.
 */
export async function startFleet(env: (ip: string, id: string) => Record<string, string>): Promise<FleetNode[]> {
  return await Promise.all(ADDRESSES.map(async (ip, i) => {
    const id = `node-${i + 1}`;
    const nodeEnv = { RELAY_NODE_ID: id, RELAY_SOURCE_IP: ip, ...env(ip, id) };
    const relay = await startNode(ip, nodeEnv);
    return { id, ip, env: nodeEnv, relay, ...relayApi(relay) };
  }));
}

/** Start a stopped (or killed) node again on its data directory, ports and token; its API follows. */
export async function restartFleetNode(node: FleetNode): Promise<void> {
  node.relay = await startNode(node.ip, node.env, node.relay);
  Object.assign(node, relayApi(node.relay));
}
