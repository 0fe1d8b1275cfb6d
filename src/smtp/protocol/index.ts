export { LineReader, type LineEvent } from "./line-reader.ts";
export { DataReader, type DataResult } from "./data-reader.ts";
export { ChunkReader, parseBdat, type BdatArgs } from "./chunk-reader.ts";
export { MessageBuffer, type MessageLimits } from "./message-buffer.ts";
export { MAX_SASL_LINE, decodeBase64, encodeBase64, parsePlain, parseResponse, type PlainCredentials, type SaslResponse } from "./sasl.ts";
export { parseCommand, parseMailFrom, parseRcptTo, type Command, type Parsed } from "./command.ts";
export { parsePath, type PathResult } from "./path.ts";
export { decodeXtext, encodeXtext, mailParams, rcptParams, splitParams, type MailParams, type RcptParams } from "./params.ts";
