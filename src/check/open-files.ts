import { effectiveMaxConnections } from "../app/connection-cap.ts";
import { type CheckResult, pass, warn } from "./result.ts";

/**
 * Whether the open-file limit holds RELAY_MAX_CONNECTIONS SMTP sessions
 * with room for the rest (src/app/connection-cap.ts); serve lowers the
 * number otherwise. The limit is this process's: a systemd unit sets its
 * own (LimitNOFILE=, 65536 in packaging/relay.service).
 */
export function checkOpenFiles(maxConnections: number, limit: number | undefined): CheckResult {
  const what = "open files";
  if (limit === undefined) return pass(what, `no limit this relay can read; RELAY_MAX_CONNECTIONS=${maxConnections}`);
  const effective = effectiveMaxConnections(maxConnections, limit);
  if (!effective.lowered) {
    return pass(what, `limit ${limit} here holds RELAY_MAX_CONNECTIONS=${maxConnections} SMTP sessions`);
  }
  return warn(
    what,
    `limit ${limit} here holds ${effective.max} SMTP sessions, fewer than RELAY_MAX_CONNECTIONS=${maxConnections}`,
    "raise the limit (LimitNOFILE= in the systemd unit, ulimit -n in a shell) or lower RELAY_MAX_CONNECTIONS",
  );
}
