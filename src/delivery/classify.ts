import type { Category } from "../core/category.ts";
import type { Reply } from "../core/reply.ts";

export type Disposition = "delivered" | "deferred" | "bounced";

export type { Category };

export interface Classification {
  readonly disposition: Disposition;
  /** Why it was not delivered; absent for deliveries. */
  readonly category?: Category;
}

/**
 * Reply classification as data (KumoMTA style): the first rule that matches
 * wins. Enhanced codes (RFC 3463) are the most reliable signal; text patterns
 * catch the providers that send generic codes.
 */
const RULES: readonly { enhanced?: RegExp; code?: RegExp; text?: RegExp; category: Category }[] = [
  // Enhanced codes that name their subject precisely win over any text.
  { enhanced: /^[45]\.1\.[16]$/, category: "bad-mailbox" },
  { enhanced: /^[45]\.1\.2$/, category: "bad-domain" },
  { enhanced: /^[45]\.1\.[78]$/, category: "invalid-sender" },
  { enhanced: /^[45]\.2\.1$/, category: "inactive-mailbox" },
  { enhanced: /^[45]\.2\.2$/, category: "quota-issues" },
  { enhanced: /^[45]\.2\.3$/, category: "content-related" },
  { enhanced: /^[45]\.3\.4$/, category: "content-related" },
  { enhanced: /^[45]\.5\.\d+$/, category: "protocol-errors" },
  { enhanced: /^[45]\.6\.\d+$/, category: "content-related" },
  // X.7.10 "Encryption needed", X.7.30 "REQUIRETLS support required" (RFC 8689 4.2.1): the hop's security, whatever the text.
  { enhanced: /^[45]\.7\.(10|30)$/, category: "policy-related" },
  // Generic codes (x.0.0, x.4.x, x.7.x) say less than the words that come with them.
  { text: /greylist|graylist|try again later|please retry/i, code: /^45/, category: "greylisting" },
  { text: /rate limit|too many (messages|connections)|throttl|temporarily deferred/i, category: "throttling" },
  { text: /spam|blocklist|blacklist|blocked|reputation|spamhaus/i, category: "spam-related" },
  { text: /virus|malware/i, category: "virus-related" },
  { text: /mailbox (full|over quota)|quota/i, category: "quota-issues" },
  {
    // Yahoo's "This user doesn't have a yahoo.com account", qmail's "no mailbox here by that name".
    text:
      /user unknown|no such user|mailbox unavailable|does not exist|unknown recipient|doesn't have an? \S+ account|no (such )?mailbox/i,
    category: "bad-mailbox",
  },
  { text: /relay(ing)? (access )?denied|not permitted to relay/i, category: "relaying-issues" },
  { enhanced: /^[45]\.4\.[0-7]$/, category: "routing-errors" },
  { enhanced: /^[45]\.7\.\d+$/, category: "policy-related" },
  { code: /^5[05]\d$/, text: /syntax|command/i, category: "protocol-errors" },
  { code: /^421$/, category: "throttling" },
];

export function classifyReply(reply: Reply): Classification {
  const disposition: Disposition = reply.code < 400 ? "delivered" : reply.code < 500 ? "deferred" : "bounced";
  if (disposition === "delivered") return { disposition };
  const text = reply.lines.join(" ");
  const rule = RULES.find(
    (r) =>
      (!r.enhanced || (reply.enhanced !== undefined && r.enhanced.test(reply.enhanced))) &&
      (!r.code || r.code.test(String(reply.code))) &&
      (!r.text || r.text.test(text)),
  );
  return { disposition, category: rule?.category ?? "other" };
}

/** Transport failures (no SMTP reply at all) are always temporary. */
export function classifyTransportError(kind: "connect" | "timeout" | "tls" | "disconnect" | "dns"): Classification {
  const category: Category = kind === "timeout"
    ? "no-answer-from-host"
    : kind === "dns"
    ? "routing-errors"
    : "bad-connection";
  return { disposition: "deferred", category };
}
