/** The connection to a milter (src/core/milter-endpoint.ts says where it listens), negotiated. */
import { formatMilterEndpoint, type MilterEndpoint } from "../core/milter-endpoint.ts";
import { connectTcp, connectUnix } from "../platform/net.ts";
import { MilterConnectionError } from "./errors.ts";
import { MilterSession, type MilterSessionOptions } from "./session.ts";

export { formatMilterEndpoint, type MilterEndpoint, parseMilterEndpoint } from "../core/milter-endpoint.ts";

export interface OpenMilterOptions extends MilterSessionOptions {
  /** How long connecting may take (Postfix milter_connect_timeout: 30 s). */
  readonly connectTimeoutMs?: number;
}

/** Connect to the milter and negotiate; a MilterError when either fails. */
export async function openMilter(endpoint: MilterEndpoint, options: OpenMilterOptions = {}): Promise<MilterSession> {
  const timeoutMs = options.connectTimeoutMs ?? 30_000;
  let socket;
  try {
    socket = endpoint.kind === "unix"
      ? await connectUnix(endpoint.path, timeoutMs)
      : await connectTcp({ host: endpoint.host, port: endpoint.port, timeoutMs });
  } catch (error) {
    throw new MilterConnectionError(
      `cannot connect to milter ${formatMilterEndpoint(endpoint)}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  const session = new MilterSession(socket, options);
  try {
    await session.negotiate();
  } catch (error) {
    await session.close();
    throw error;
  }
  return session;
}
