/**
 * A private rspamd for milter tests: scripts/rspamd.ts starts it (the
 * bench's milter phase starts the same one); `rspamdMissing` is the reason
 * to skip when it is not installed, an error under RELAY_REQUIRE_PEERS=1.
 */
import { RSPAMD, rspamdInstalled } from "../../scripts/rspamd.ts";
import { NOT_INSTALLED, peerMissing } from "./peers.ts";

export { RSPAMD, type Rspamd, startRspamd } from "../../scripts/rspamd.ts";

export const rspamdMissing: string | undefined = peerMissing(RSPAMD, "rspamd", !rspamdInstalled() && NOT_INSTALLED);
