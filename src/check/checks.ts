import type { Config } from "../config/load.ts";
import type { Resolver } from "../dns/resolver.ts";
import type { MigrationFile } from "../queue/migration-files.ts";
import { checkCertificate } from "./certificate.ts";
import { checkDataDir } from "./data-dir.ts";
import { checkDiskSpace } from "./disk-space.ts";
import { checkHostName } from "./host-name.ts";
import { checkMilters } from "./milters.ts";
import { checkOpenFiles } from "./open-files.ts";
import { openFileLimit } from "../platform/file-limit.ts";
import { checkPorts } from "./ports.ts";
import type { CheckResult } from "./result.ts";
import { relayServing } from "./running-relay.ts";
import { checkSchema } from "./schema.ts";
import { checkSharedDb } from "./shared-db.ts";
import { checkSourceIp } from "./source-ip.ts";

export interface CheckDeps {
  readonly resolver: Resolver;
  readonly now: number;
  /** The migrations this binary carries. */
  readonly migrations: readonly MigrationFile[];
}

/**
 * Everything `relay check` looks at, in the order an operator fixes them,
 * given a configuration that already validated. Nothing is written: no
 * directory made, no migration applied, no certificate generated.
 */
export async function runChecks(config: Config, deps: CheckDeps): Promise<CheckResult[]> {
  const listeners = [
    ...config.smtpListen.map((l) => ({ ...l, variable: "RELAY_SMTP_LISTEN" })),
    ...config.smtpsListen.map((l) => ({ ...l, variable: "RELAY_SMTPS_LISTEN" })),
    { ...config.httpListen, variable: "RELAY_HTTP_LISTEN" },
  ];
  return [
    checkDataDir(config.dataDir),
    checkDiskSpace(config.dataDir),
    checkOpenFiles(config.maxConnections, openFileLimit()),
    checkSourceIp(config.sourceIp),
    ...await checkHostName(deps.resolver, config.hostname, config.sourceIp),
    checkCertificate({ certFile: config.tlsCertFile, keyFile: config.tlsKeyFile }, config.hostname, deps.now),
    ...await checkPorts(listeners, () => relayServing(config.dataDir)),
    await checkSchema(config.dbUrl, deps.migrations),
    ...(config.sharedDbUrl === undefined
      ? []
      : [await checkSharedDb(config.sharedDbUrl, config.sharedDbToken, deps.migrations)]),
    ...await checkMilters(config.milters),
  ];
}
