/** An SMTP reply as a value: code, RFC 3463 enhanced status, text lines. */
export interface Reply {
  readonly code: number;
  /** RFC 3463 enhanced status code such as "5.1.1", when the server sent one. */
  readonly enhanced?: string;
  readonly lines: readonly string[];
  /** The command that caused this reply (KumoMTA keeps it; it makes logs and bounces readable). */
  readonly command?: string;
}

export function reply(code: number, enhanced: string | undefined, ...lines: string[]): Reply {
  return { code, enhanced, lines: lines.length ? lines : [""] };
}

export const isPositive = (r: Reply): boolean => r.code >= 200 && r.code < 400;
export const isTransient = (r: Reply): boolean => r.code >= 400 && r.code < 500;
export const isPermanent = (r: Reply): boolean => r.code >= 500;

/** Render a reply as wire text: multi-line replies use "code-" on all but the last line (RFC 5321 4.2.1). */
export function formatReply(r: Reply): string {
  const prefix = r.enhanced ? `${r.enhanced} ` : "";
  return r.lines
    .map((line, i) => `${r.code}${i === r.lines.length - 1 ? " " : "-"}${prefix}${line}`.trimEnd() + "\r\n")
    .join("");
}

/** One line for logs, events and bounces: "550 5.1.1 no such user". */
export function replyText(r: Reply): string {
  return `${r.code}${r.enhanced ? ` ${r.enhanced}` : ""} ${r.lines.join(" ")}`.trim();
}
