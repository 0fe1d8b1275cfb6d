export { Action, Command, Family, MacroStage, MILTER_VERSION, OFFERED_PROTOCOL, Protocol, Reply } from "./constants.ts";
export type { ConnectInfo } from "./commands.ts";
export { MAX_PACKET_LENGTH, type Packet, PacketDecoder } from "./decoder.ts";
export type { MilterModification } from "./edits.ts";
export { applyModifications, bareAddress, type MilterEnvelope } from "./apply.ts";
export { MilterPool, type MilterPoolOptions } from "./pool.ts";
export { formatMilterEndpoint, type MilterEndpoint, openMilter, parseMilterEndpoint } from "./endpoint.ts";
export { MilterConnectionError, MilterError, MilterProtocolError, MilterTimeoutError } from "./errors.ts";
export { commonMacros, type MacroFacts, type Macros, type StageMacros } from "./macros.ts";
export type { Negotiation, ReplyText } from "./replies.ts";
export {
  DEFAULT_MILTER_TIMEOUTS,
  type MilterAddress,
  type MilterFinalVerdict,
  type MilterMessage,
  type MilterMessageResult,
  MilterSession,
  type MilterSessionOptions,
  type MilterStep,
  type MilterTimeouts,
  type MilterVerdict,
} from "./session.ts";
