export { type LineEvent, LineReader } from "./line-reader.ts";
export { DataReader, type DataResult } from "./data-reader.ts";
export { type BdatArgs, ChunkReader, parseBdat } from "./chunk-reader.ts";
export { MessageBuffer, type MessageLimits } from "./message-buffer.ts";
export {
  decodeBase64,
  encodeBase64,
  MAX_SASL_LINE,
  parsePlain,
  parseResponse,
  type PlainCredentials,
  type SaslResponse,
} from "./sasl.ts";
export { type Command, parseCommand, type Parsed, parseMailFrom, parseRcptTo } from "./command.ts";
export { parsePath, type PathResult } from "./path.ts";
export {
  decodeXtext,
  encodeXtext,
  type MailParams,
  mailParams,
  type RcptParams,
  rcptParams,
  splitParams,
} from "./params.ts";
export { transcribe, type Transcript, type TranscriptSource } from "./transcript.ts";
