import { readControlFile } from "../app/control-file.ts";

/**
 * Whether a relay serves from `dataDir` now: the control file serve writes
 * at start names its HTTP API, and that answers.
 */
export async function relayServing(dataDir: string): Promise<boolean> {
  const access = readControlFile(dataDir);
  if ("missing" in access) return false;
  try {
    const response = await fetch(`${access.url}/healthz`, { signal: AbortSignal.timeout(2_000) });
    await response.body?.cancel();
    return response.ok;
  } catch {
    return false;
  }
}
