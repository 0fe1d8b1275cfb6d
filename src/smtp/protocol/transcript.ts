/**
 * One line of an SMTP session as it crossed the wire, without its CRLF: `in`
 * was read from the peer, `out` written to it. The protocol code hands over
 * no secret (AUTH responses) and no message content: a transcript may be
 * logged as it is.
 */
export type Transcript = (direction: "in" | "out", line: string) => void;

/**
 * Where a long-lived session writes its transcript now, asked at each write
 * and each reply: a trace may be switched on or off while the session lasts
 * (a pooled outbound connection). Undefined: nowhere, at the cost of a call.
 */
export type TranscriptSource = () => Transcript | undefined;

/** Every line of wire text (one or more CRLF-ended lines), to a transcript. */
export function transcribe(transcript: Transcript, direction: "in" | "out", text: string): void {
  for (const line of text.split("\r\n")) if (line !== "") transcript(direction, line);
}
