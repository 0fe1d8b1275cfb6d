import type { Reply } from "../core/reply.ts";

const UNIT_MS: Readonly<Record<string, number>> = { s: 1000, m: 60_000, h: 3_600_000 };

/**
 * The wait a greylisting reply names: "Greylisted for 5 minutes" (sqlgrey),
 * "try again in 300 seconds", "please come back in 00:05:00"
 * (milter-greylist). The longest delays in common use are about half an
 * hour (milter-greylist 30m, OpenBSD spamd 25m): a longer number, or none
 * at all, is no hint of one.
 */
const WORDS = /\b(?:in|for|after)\s+(\d+)\s*(s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?)\b/i;
const CLOCK = /\b(?:in|for|after)\s+(\d{1,2}):(\d{2}):(\d{2})\b/i;
const LONGEST_HINT = 3_600_000;

function hintedWait(reply: Reply): number | undefined {
  const text = reply.lines.join(" ");
  const words = WORDS.exec(text);
  const clock = CLOCK.exec(text);
  const ms = words
    ? Number(words[1]) * UNIT_MS[words[2]!.charAt(0).toLowerCase()]!
    : clock
    ? ((Number(clock[1]) * 60 + Number(clock[2])) * 60 + Number(clock[3])) * 1000
    : undefined;
  return ms !== undefined && ms >= 1000 && ms <= LONGEST_HINT ? ms : undefined;
}

/**
 * When to retry a recipient that a greylisting reply deferred for the first
 * time. A greylister accepts the same (client IP, sender, recipient) once its
 * delay has passed since it first saw them, so the retry is due then, not at
 * the schedule's next step, which may be hours away: at the wait the reply
 * names, else `configured` (RELAY_GREYLIST_RETRY).
 */
export const greylistRetryDelay = (reply: Reply, configured: number): number => hintedWait(reply) ?? configured;
