// deno-lint-ignore-file no-explicit-any -- the API's JSON answers, printed as they come
import { readControlFile } from "../app/control-file.ts";
import type { CommandContext } from "./command.ts";

/**
 * One request to the relay serving from this data directory, through its
 * HTTP API with the URL and token in control.json; undefined (the problem
 * told on stderr) when it fails.
 */
export async function callRelay(
  context: Pick<CommandContext, "config">,
  method: string,
  path: string,
  body?: unknown,
): Promise<any> {
  const { dataDir } = context.config();
  const access = readControlFile(dataDir);
  if ("missing" in access) {
    console.error(`relay: no running relay serves from ${dataDir}: ${access.missing} (relay serve writes it at start)`);
    return undefined;
  }
  let response: Response;
  try {
    response = await fetch(`${access.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${access.token}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
    console.error(`relay: the relay does not answer at ${access.url} (${cause}): is relay serve running?`);
    return undefined;
  }
  const answer: any = await response.json().catch(() => undefined);
  if (!response.ok) {
    const detail = answer?.detail ?? answer?.title ?? response.statusText;
    const fields = (answer?.errors ?? []).map((e: any) => `; ${e.field}: ${e.message}`).join("");
    console.error(`relay: ${method} ${path}: ${response.status} ${detail}${fields}`);
    return undefined;
  }
  return answer;
}
