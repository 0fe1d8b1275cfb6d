import type { MilterEndpoint } from "./milter-endpoint.ts";

/** What a milter that is down, too slow or breaks the protocol counts as (Postfix's milter_default_action). */
export const MILTER_DEFAULTS = ["accept", "tempfail", "reject"] as const;
export type MilterDefault = (typeof MILTER_DEFAULTS)[number];

/** One content scanner of RELAY_MILTERS (src/config/milters.ts reads them). */
export interface MilterSetting {
  readonly endpoint: MilterEndpoint;
  /** The address as written back (`inet:127.0.0.1:11332`): the milter's name in events and logs. */
  readonly name: string;
  readonly default: MilterDefault;
  readonly connectTimeoutMs: number;
  /** For each answer. */
  readonly commandTimeoutMs: number;
  /** For a whole message. */
  readonly messageTimeoutMs: number;
}

/** Who hands mail in, as RELAY_MILTER_SCOPE names them: SMTP users, API keys, the relay networks, anyone else. */
export const SCAN_SCOPES = ["users", "keys", "networks", "outside"] as const;
export type ScanScope = (typeof SCAN_SCOPES)[number];
