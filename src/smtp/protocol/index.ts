export { LineReader, type LineEvent } from "./line-reader.ts";
export { DataReader, type DataResult } from "./data-reader.ts";
export { parseCommand, parseMailFrom, parseRcptTo, type Command, type Parsed } from "./command.ts";
export { parsePath, type PathResult } from "./path.ts";
export { decodeXtext, encodeXtext, mailParams, rcptParams, splitParams, type MailParams, type RcptParams } from "./params.ts";
