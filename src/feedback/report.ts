/** What reading a message that arrived at RELAY_BOUNCE_DOMAIN found in it. */

/** One recipient a bounce says was not delivered (or is delayed). */
export interface FailedRecipient {
  /** Final-Recipient (or Original-Recipient), or the address a text bounce names. */
  readonly address?: string;
  /** RFC 3464 2.3.3 Action, lower case; text bounces say "failed" or "delayed". */
  readonly action: string;
  /** RFC 3463 enhanced status code, as the report gives it or as found in the reply text. */
  readonly status?: string;
  /** The remote server's reply text (RFC 3464 2.3.6 Diagnostic-Code, without its type). */
  readonly diagnostic?: string;
  readonly remoteMta?: string;
}

/** The formats told apart; "rfc3464" is any standard report whose sender is not recognised. */
export type BounceFormat = "rfc3464" | "exim" | "postfix" | "qmail" | "microsoft" | "gmail" | "yahoo";

export type Feedback =
  | {
    readonly kind: "bounce";
    readonly format: BounceFormat;
    readonly recipients: readonly FailedRecipient[];
    /** The returned message's (or its headers') Return-Path, where a VERP address may be found. */
    readonly originalReturnPath?: string;
  }
  | {
    readonly kind: "complaint";
    /** RFC 5965 3.1 Feedback-Type (abuse, fraud, virus, other, not-spam...), lower case. */
    readonly feedbackType: string;
    readonly userAgent?: string;
    readonly originalRcptTo?: string;
    readonly originalMailFrom?: string;
    readonly reportingMta?: string;
    readonly originalReturnPath?: string;
  }
  /** An automatic reply (RFC 3834): out of office, vacation; not a bounce. */
  | { readonly kind: "autoreply"; readonly signal: string }
  | { readonly kind: "unrecognized" };
