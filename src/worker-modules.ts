/**
 * Where worker modules are. This file sits beside main.ts on purpose: in the
 * compiled binary every module shares the entry's import.meta.url, so paths
 * are written relative to src/, where they hold in source and binary alike.
 */
export const DB_WORKER_MODULE = new URL("./queue/db-worker.ts", import.meta.url);
export const DKIM_WORKER_MODULE = new URL("./auth/dkim-worker.ts", import.meta.url);
