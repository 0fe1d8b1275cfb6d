/** MTA-STS (RFC 8461): discover a domain's policy, then what it requires of each MX host. */
export { createMtaSts, type MtaSts, type MtaStsOptions, type StsResult } from "./discover.ts";
export { tlsRequirement, type TlsRequirement } from "./enforce.ts";
export { fetchPolicy, type FetchFailureKind, type FetchOptions, type FetchResult } from "./fetch.ts";
export { mxMatches, parsePolicy, type Policy, type PolicyMode, type PolicyResult } from "./policy.ts";
export { parseStsRecord, selectStsRecord, type RecordResult, type StsRecord } from "./record.ts";
export { PolicyCache, type CachedPolicy } from "./cache.ts";
