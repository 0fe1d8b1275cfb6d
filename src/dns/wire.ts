/** The RFC 1035 codec in one import: model, names, encode, decode. */
export * from "./types.ts";
export { isValidName, nameLabels, readName } from "./name.ts";
export { decodeHeader, decodeMessage, type DecodeResult, formatIpv6 } from "./decode.ts";
export { EDNS_UDP_SIZE, encodeMessage, encodeQuery } from "./encode.ts";
