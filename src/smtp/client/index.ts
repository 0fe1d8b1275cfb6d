export { SmtpClientSession } from "./session.ts";
export type { ClientOptions, ClientTimeouts } from "./options.ts";
export { DEFAULT_TIMEOUTS } from "./options.ts";
export type { Envelope, RecipientReply, SendResult } from "./transaction.ts";
export type { TlsInfo } from "./handshake.ts";
export { type ClientErrorKind, type ClientStage, type PartialSendResult, SmtpClientError } from "./errors.ts";
export { recipientOutcomes } from "./outcomes.ts";
export { type DsnParameters, type DsnRecipientParameters, encodeXtext } from "./extensions.ts";
