/** MTA-STS (RFC 8461): discover a domain's policy, then what it requires of each MX host. */
export { createMtaSts, type MtaSts, type MtaStsOptions, type StsResult } from "./discover.ts";
export { type TlsRequirement, tlsRequirement } from "./enforce.ts";
export { type FetchFailureKind, type FetchOptions, fetchPolicy, type FetchResult } from "./fetch.ts";
export { mxMatches, parsePolicy, type Policy, type PolicyMode, type PolicyResult } from "./policy.ts";
export { parseStsRecord, type RecordResult, selectStsRecord, type StsRecord } from "./record.ts";
export { type CachedPolicy, PolicyCache } from "./cache.ts";
