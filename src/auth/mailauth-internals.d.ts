/**
 * Types for the parts of mailauth (4.x, CommonJS) used below its public API:
 * the DKIM signer pipeline (so we choose the signed header list ourselves,
 * over-signing included) and a few tools. Kept to what this project calls.
 */
declare module "mailauth/lib/dkim/dkim-signer.js" {
  import { Writable } from "node:stream";

  export interface ParsedHeaderLine {
    /** Lower-case field name. */
    readonly key: string;
    readonly casedKey: string;
    /** The whole field, folded as it came, latin1 ("binary") bytes. */
    readonly line: Buffer;
  }

  export interface SignatureData {
    signingDomain: string;
    selector: string;
    privateKey: string | Buffer;
    algorithm?: string;
    canonicalization?: string;
  }

  export class DkimSigner extends Writable {
    constructor(options: {
      canonicalization?: string;
      signTime?: Date;
      signatureData: SignatureData[];
    });
    headers: { parsed: ParsedHeaderLine[]; original: Buffer } | false;
    bodyHashes: Map<string, { hash: string | null }>;
    signatureHeaders: string[];
    errors: unknown[];
    finalize(): Promise<void>;
  }
}

declare module "mailauth/lib/dkim/header/index.js" {
  import type { ParsedHeaderLine } from "mailauth/lib/dkim/dkim-signer.js";
  export function generateCanonicalizedHeader(
    type: "DKIM",
    signingHeaderLines: { keys: string; headers: ParsedHeaderLine[] },
    options: {
      signingDomain: string;
      selector: string;
      algorithm: string;
      canonicalization: string;
      signTime?: Date;
      bodyHash: string | null;
    },
  ): { canonicalizedHeader: Buffer; signatureHeaderLine: string; dkimHeaderOpts: Record<string, unknown> };
}

declare module "mailauth/lib/tools.js" {
  export function writeToStream(stream: NodeJS.WritableStream, input: Buffer | string): Promise<void>;
  export function formatSignatureHeaderLine(type: "DKIM", values: Record<string, unknown>, folded: boolean): string;
  /** The entry of `domainList` aligned with `fromDomain` (organizational domain unless `strict`), or false. */
  export function getAlignment(fromDomain: string, domainList: string[], strict?: boolean): { domain: string } | false;
}

declare module "mailauth/lib/dmarc/get-dmarc-record.js" {
  /** The DMARC record of `domain`, or of its organizational domain when it has none (isOrgRecord); false when neither has one. */
  export default function getDmarcRecord(
    domain: string,
    resolver: (name: string, type: string) => Promise<unknown>,
  ): Promise<false | { rr: string; isOrgRecord: boolean; p?: string; sp?: string; rua?: string; [tag: string]: unknown }>;
}
