/** Why a recipient was not delivered: the bounce categories every outcome is classified into (src/delivery/classify.ts). */
export const categories = [
  "bad-mailbox",
  "bad-domain",
  "inactive-mailbox",
  "quota-issues",
  "spam-related",
  "policy-related",
  "routing-errors",
  "protocol-errors",
  "bad-connection",
  "no-answer-from-host",
  "message-expired",
  "content-related",
  "relaying-issues",
  "invalid-sender",
  "virus-related",
  "bad-configuration",
  "greylisting",
  "throttling",
  "other",
] as const;
export type Category = (typeof categories)[number];
