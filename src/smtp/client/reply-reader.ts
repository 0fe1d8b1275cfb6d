import type { Reply } from "../../core/reply.ts";

/** A reply line is at most 512 octets (RFC 5321 4.5.3.1.5); EHLO replies span many lines. */
export const DEFAULT_MAX_REPLY_BYTES = 64 * 1024;

export class ReplyFormatError extends Error {
  override readonly name = "ReplyFormatError";
}

const LINE = /^([2-5]\d\d)([ -]|$)(.*)$/s;
/** RFC 3463: class.subject.detail; class must agree with the reply's first digit (RFC 2034). */
const ENHANCED = /^([245])\.(\d{1,3})\.(\d{1,3})(?: +|$)/;

/**
 * Incremental reply parser: push bytes, get whole replies (RFC 5321 4.2.1).
 * Multi-line replies ("250-..." lines ending with "250 ...") become one Reply.
 * Lines end with CRLF; a bare LF is tolerated as a line end.
 */
export class ReplyReader {
  /** Bytes after the last line end, kept as they came: joined only once a line end arrives. */
  private held: Uint8Array[] = [];
  private heldBytes = 0;
  private lines: string[] = [];
  private code = 0;
  private replyBytes = 0;
  private readonly decoder = new TextDecoder("utf-8");

  constructor(private readonly maxReplyBytes = DEFAULT_MAX_REPLY_BYTES) {}

  /** True when bytes of an unfinished reply are held (e.g. data sent before STARTTLS completed). */
  get pending(): boolean {
    return this.heldBytes > 0 || this.lines.length > 0;
  }

  push(chunk: Uint8Array): Reply[] {
    if (!chunk.includes(10)) {
      // No line end: hold the piece rather than copy all held bytes again, so a reply
      // trickled in small pieces costs linear time, not quadratic.
      this.held.push(chunk.slice());
      this.heldBytes += chunk.length;
      this.checkSize(this.heldBytes);
      return [];
    }
    const joined = new Uint8Array(this.heldBytes + chunk.length);
    let at = 0;
    for (const part of [...this.held, chunk]) {
      joined.set(part, at);
      at += part.length;
    }
    const replies: Reply[] = [];
    let start = 0;
    for (let lf = joined.indexOf(10, start); lf !== -1; lf = joined.indexOf(10, start)) {
      const end = lf > start && joined[lf - 1] === 13 ? lf - 1 : lf;
      this.replyBytes += lf + 1 - start;
      this.checkSize();
      const done = this.line(this.decoder.decode(joined.subarray(start, end)));
      if (done) replies.push(done);
      start = lf + 1;
    }
    const rest = joined.slice(start);
    this.held = rest.length > 0 ? [rest] : [];
    this.heldBytes = rest.length;
    this.checkSize(this.heldBytes);
    return replies;
  }

  private checkSize(extra = 0): void {
    if (this.replyBytes + extra > this.maxReplyBytes) {
      throw new ReplyFormatError(`reply longer than ${this.maxReplyBytes} bytes`);
    }
  }

  private line(text: string): Reply | undefined {
    const match = LINE.exec(text);
    if (!match) throw new ReplyFormatError(`not an SMTP reply line: ${JSON.stringify(text.slice(0, 80))}`);
    const code = Number(match[1]);
    if (this.lines.length > 0 && code !== this.code) {
      throw new ReplyFormatError(`reply code changed from ${this.code} to ${code} within a multi-line reply`);
    }
    this.code = code;
    this.lines.push(match[3] ?? "");
    if (match[2] === "-") return undefined;
    const lines = this.lines;
    this.lines = [];
    this.replyBytes = 0;
    return parseEnhanced(code, lines);
  }
}

/** Split an RFC 3463 enhanced status code off the reply's lines, when the first line carries one. */
export function parseEnhanced(code: number, lines: readonly string[]): Reply {
  const first = ENHANCED.exec(lines[0] ?? "");
  if (!first || first[1] !== String(code)[0]) return { code, lines: [...lines] };
  const enhanced = `${first[1]}.${first[2]}.${first[3]}`;
  const stripped = lines.map((line) => {
    const m = ENHANCED.exec(line);
    return m && `${m[1]}.${m[2]}.${m[3]}` === enhanced ? line.slice(m[0].length) : line;
  });
  return { code, enhanced, lines: stripped };
}
