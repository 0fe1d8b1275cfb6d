/**
 * A webhook receiver on loopback (node:http) whose behaviour the test sets:
 * "ok" answers 204, "fail" answers 500, "hang" never answers (until closed).
 * Every request is kept with its headers and raw body; those it answered 2xx
 * are the deliveries the relay may count as taken.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export type ReceiverMode = "ok" | "fail" | "hang";

export interface WebhookRequestSeen {
  readonly mode: ReceiverMode;
  readonly headers: Record<string, string>;
  readonly body: string;
}

export interface WebhookReceiver {
  readonly url: string;
  mode: ReceiverMode;
  /** Every request, in arrival order. */
  readonly requests: WebhookRequestSeen[];
  /** The requests it answered 2xx. */
  acknowledged(): WebhookRequestSeen[];
  close(): Promise<void>;
}

export async function startWebhookReceiver(mode: ReceiverMode = "ok"): Promise<WebhookReceiver> {
  const requests: WebhookRequestSeen[] = [];
  const hanging = new Set<ServerResponse>();
  const receiver = {
    url: "",
    mode,
    requests,
    acknowledged: () => requests.filter((r) => r.mode === "ok"),
    close: async () => {},
  };
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const seen = {
        mode: receiver.mode,
        headers: Object.fromEntries(Object.entries(request.headers).map(([k, v]) => [k, String(v)])),
        body: Buffer.concat(chunks).toString("utf8"),
      };
      requests.push(seen);
      if (seen.mode === "ok") response.writeHead(204).end();
      else if (seen.mode === "fail") response.writeHead(500, { "content-type": "text/plain" }).end("down for a test\n");
      else hanging.add(response);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/relay?source=test`;
  receiver.close = () =>
    new Promise<void>((resolve) => {
      for (const response of hanging) response.destroy();
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return receiver;
}
