export { Admission } from "./admission.ts";
export { type ConnectionCounts, type SmtpServerHandle, startSmtpServer } from "./listener.ts";
export type {
  AuthCredentials,
  Envelope,
  MailParams,
  RcptParams,
  SessionInfo,
  SmtpServerHooks,
  SmtpServerOptions,
} from "./types.ts";
