/**
 * RELAY_MILTERS: the content scanners, in the order they see a message. A
 * comma list of milter addresses (src/core/milter-endpoint.ts), each
 * followed by options separated by spaces:
 *
 *   inet:127.0.0.1:11332 default=tempfail message_timeout=2m, unix:/run/clamav/clamav-milter.ctl
 *
 * `default` is what a milter that is down, too slow or breaks the protocol
 * counts as (Postfix's milter_default_action; tempfail unless set); the
 * timeouts are Postfix's milter_connect_timeout, milter_command_timeout and
 * milter_content_timeout, shorter by default so that a client never waits
 * long on a scanner.
 *
 * RELAY_MILTER_SCOPE: which submitters' mail is scanned.
 */
import { formatMilterEndpoint, type MilterEndpoint, parseMilterEndpoint } from "../core/milter-endpoint.ts";
import { parseDuration } from "../core/duration.ts";
import {
  MILTER_DEFAULTS,
  type MilterDefault,
  type MilterSetting,
  SCAN_SCOPES,
  type ScanScope,
} from "../core/milter-setting.ts";
import { parseList } from "./parsers.ts";

const OPTION_DEFAULTS = {
  default: "tempfail" as MilterDefault,
  connect_timeout: 5_000,
  command_timeout: 30_000,
  message_timeout: 120_000,
};

/** The milters `text` lists, or undefined when any part is not understood. */
export function parseMilters(text: string): MilterSetting[] | undefined {
  return parseList(text, (entry) => {
    const [address, ...options] = entry.split(/\s+/);
    let endpoint: MilterEndpoint;
    try {
      endpoint = parseMilterEndpoint(address!);
    } catch {
      return undefined;
    }
    const chosen = { ...OPTION_DEFAULTS };
    for (const option of options) {
      const [key, value = ""] = option.split("=", 2) as [string, string?];
      if (key === "default") {
        if (!(MILTER_DEFAULTS as readonly string[]).includes(value)) return undefined;
        chosen.default = value as MilterDefault;
      } else if (key === "connect_timeout" || key === "command_timeout" || key === "message_timeout") {
        const ms = parseDuration(value);
        if (ms === undefined || ms <= 0) return undefined;
        chosen[key] = ms;
      } else {
        return undefined;
      }
    }
    return {
      endpoint,
      name: formatMilterEndpoint(endpoint),
      default: chosen.default,
      connectTimeoutMs: chosen.connect_timeout,
      commandTimeoutMs: chosen.command_timeout,
      messageTimeoutMs: chosen.message_timeout,
    };
  });
}

export function parseScanScope(text: string): ScanScope[] | undefined {
  if (["none", "off"].includes(text.trim().toLowerCase())) return [];
  return parseList(text, (part) => (SCAN_SCOPES as readonly string[]).includes(part) ? part as ScanScope : undefined);
}
