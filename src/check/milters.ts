import type { MilterSetting } from "../core/milter-setting.ts";
import { MilterError, openMilter } from "../milter/index.ts";
import { type CheckResult, fail, pass, warn } from "./result.ts";

/**
 * RELAY_MILTERS: each scanner answers and negotiates, within its connect and
 * command timeouts, as serve will ask it. One that does not is what its
 * `default` makes of every message: a failure when that refuses mail, a
 * warning when mail goes through unscanned.
 */
export async function checkMilters(milters: readonly MilterSetting[]): Promise<CheckResult[]> {
  return await Promise.all(milters.map(async (milter) => {
    const what = `RELAY_MILTERS ${milter.name}`;
    try {
      const session = await openMilter(milter.endpoint, {
        connectTimeoutMs: milter.connectTimeoutMs,
        timeouts: { commandMs: milter.commandTimeoutMs },
      });
      const version = session.negotiated?.version;
      await session.close();
      return pass(what, `answers, milter protocol version ${version}`);
    } catch (error) {
      if (!(error instanceof MilterError)) throw error;
      const consequence = milter.default === "accept"
        ? "mail goes through unscanned (default=accept)"
        : `every message in scope is refused (default=${milter.default})`;
      const fix = "start the scanner, or fix its address in RELAY_MILTERS";
      return milter.default === "accept"
        ? warn(what, `${error.message}: ${consequence}`, fix)
        : fail(what, `${error.message}: ${consequence}`, fix);
    }
  }));
}
