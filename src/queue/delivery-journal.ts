import { closeSync, constants, mkdirSync, openSync, readdirSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { Outcome } from "./records.ts";

/** A segment is left for a new one past this size, and removed once all it holds is committed. */
const SEGMENT_BYTES = 1 << 20;
const SEGMENT_NAME = /^delivered-(\d+)\.log$/;

export function journalDirOf(dataDir: string): string {
  return join(dataDir, "journal");
}

/** One append: its outcomes are committed (or their commit failed: the leases decide then). */
export type JournalSettle = () => void;

interface Segment {
  readonly seq: number;
  readonly fd: number;
  bytes: number;
  /** Appends whose outcomes are not yet committed. */
  pending: number;
  /** A failed write left part of a line: the next begins on a line of its own. */
  torn: boolean;
}

/**
 * The deliveries a destination acknowledged, written down with a plain
 * write the moment each 250 arrives, ahead of the database commit that
 * records them: that commit waits its turn behind acceptances and group
 * commits, and a kill in between would send the message again. A write
 * that returned is in the kernel's page cache, which a killed process
 * cannot take back (Postfix's qmgr trusts the same: it marks a recipient
 * done in the queue file without fsync). Not a power-loss guarantee: then
 * the recipient is simply tried again, as without the journal.
 *
 * Segments of JSON lines, one line per append; each is removed once every
 * outcome in it is committed. At start, what the segments hold is
 * `recovered` and recorded before any lease is released.
 */
export class DeliveryJournal {
  private current: Segment | undefined;
  private readonly closed: Segment[] = [];
  private readonly leftover: number[];
  private nextSeq: number;
  private failing = false;

  private constructor(
    private readonly dir: string,
    private readonly log: (level: "warn", message: string, fields?: Record<string, unknown>) => void,
  ) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.leftover = readdirSync(dir)
      .map((name) => SEGMENT_NAME.exec(name)?.[1])
      .filter((seq): seq is string => seq !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
    this.nextSeq = (this.leftover.at(-1) ?? 0) + 1;
  }

  static open(dir: string, log: DeliveryJournal["log"]): DeliveryJournal {
    return new DeliveryJournal(dir, log);
  }

  /**
   * What the segments left by the last run hold, in the order written. A
   * line cut short by the kill is skipped: its append never returned, so
   * the commit it preceded never began either.
   */
  recovered(): Outcome[] {
    return this.leftover.flatMap((seq) =>
      readFileSync(this.pathOf(seq), "utf8")
        .split("\n")
        .flatMap((line) => parsedLine(line))
    );
  }

  /** The recovered outcomes are committed: their segments go. */
  forgetRecovered(): void {
    for (const seq of this.leftover.splice(0)) unlinkSync(this.pathOf(seq));
  }

  /**
   * Write the outcomes down before their commit. A failed write (a full
   * disk) is logged once and costs only the journal's protection.
   */
  append(outcomes: readonly Outcome[]): JournalSettle {
    if (outcomes.length === 0) return () => {};
    const text = JSON.stringify(outcomes) + "\n";
    let segment: Segment | undefined;
    let at = 0;
    try {
      segment = this.segmentFor(Buffer.byteLength(text) + 1);
      const line = Buffer.from(segment.torn ? "\n" + text : text);
      while (at < line.byteLength) at += writeSync(segment.fd, line, at);
      segment.torn = false;
      segment.bytes += line.byteLength;
    } catch (error) {
      if (segment) segment.torn ||= at > 0;
      if (!this.failing) this.log("warn", "writing the delivery journal failed", { error: String(error) });
      this.failing = true;
      return () => {};
    }
    this.failing = false;
    segment.pending += 1;
    return () => {
      segment.pending -= 1;
      this.removeFinished();
    };
  }

  /** At stop: segments whose outcomes are all committed go; the rest are recovered at the next start. */
  close(): void {
    if (this.current) this.closed.push(this.current);
    this.current = undefined;
    this.removeFinished();
    for (const segment of this.closed.splice(0)) closeSync(segment.fd);
  }

  private segmentFor(bytes: number): Segment {
    if (this.current && this.current.bytes + bytes > SEGMENT_BYTES && this.current.bytes > 0) {
      this.closed.push(this.current);
      this.current = undefined;
      this.removeFinished();
    }
    if (!this.current) {
      const seq = this.nextSeq++;
      const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND;
      this.current = { seq, fd: openSync(this.pathOf(seq), flags, 0o600), bytes: 0, pending: 0, torn: false };
    }
    return this.current;
  }

  private removeFinished(): void {
    for (let i = this.closed.length - 1; i >= 0; i--) {
      const segment = this.closed[i]!;
      if (segment.pending > 0) continue;
      this.closed.splice(i, 1);
      closeSync(segment.fd);
      try {
        unlinkSync(this.pathOf(segment.seq));
      } catch (error) {
        this.log("warn", "removing a finished delivery journal segment failed", { error: String(error) });
      }
    }
  }

  private pathOf(seq: number): string {
    return join(this.dir, `delivered-${seq}.log`);
  }
}

function parsedLine(line: string): Outcome[] {
  if (line === "") return [];
  try {
    const outcomes = JSON.parse(line);
    return Array.isArray(outcomes) ? outcomes : [];
  } catch {
    return [];
  }
}
