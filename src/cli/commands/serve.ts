import { UsageError } from "../../core/errors.ts";
import type { Command } from "../command.ts";

export const serveCommand: Command = {
  name: "serve",
  summary: "run the node: SMTP listeners, HTTP API, delivery loop (the default)",
  usage: `Usage: relay serve [--env-file FILE]

Runs the node until SIGTERM or SIGINT: SMTP on RELAY_SMTP_LISTEN, the HTTP API
on RELAY_HTTP_LISTEN, and the delivery loop. Migrations are applied at start.
One relay per RELAY_DATA_DIR: a second one on the same directory exits with 1.`,
  async run({ config, logger, runtime, version }) {
    const settings = config();
    const log = logger(settings);
    // Loaded when it runs, as every command's heavy part is (domains.ts): the whole node is here.
    const { startRelay } = await import("../../app/relay.ts");
    let relay: Awaited<ReturnType<typeof startRelay>>;
    try {
      relay = await startRelay(settings, runtime, version, log);
    } catch (error) {
      // Bad configuration found at start (RELAY_SHAPING_FILE): exit 2, each problem on its own line, as for variables.
      if (error instanceof UsageError) throw error;
      // Through the log like everything serve says, so that a JSON log stays JSON.
      const detail = settings.logLevel === "debug" && error instanceof Error ? { stack: error.stack } : {};
      log("error", `relay cannot start: ${error instanceof Error ? error.message : String(error)}`, detail);
      return 1;
    }
    const clean = await new Promise<boolean>((resolve) => {
      let stopping = false;
      const stop = () => {
        if (stopping) return;
        stopping = true;
        log("info", "stopping: no new connections, finishing deliveries");
        void relay.stop().then(resolve);
      };
      runtime.onSignal("SIGTERM", stop);
      runtime.onSignal("SIGINT", stop);
    });
    // A close that failed (logged) is a runtime failure: what it held may not be on disk.
    return clean ? 0 : 1;
  },
};
