/**
 * Group commit: requests arriving while a commit is pending share the next
 * one, so many concurrent acceptances pay for one transaction and one fsync.
 * Each caller's promise settles only after the commit that carried its work.
 *
 * One commit at a time: whatever arrives meanwhile waits and goes in the
 * next. Measured against up to four in flight (which kept the database busy
 * with smaller commits): 25–40% less database time per message, fewer
 * fsyncs, and equal or better throughput in every scripts/bench case. When
 * a commit ends, the next group is handed over before the finished group's
 * callers run, so the database is not idle while they write their replies.
 */
/** Told of each commit: how many requests it carried and how long it took, fsync included (ms). */
export type CommitMeter = (batchSize: number, ms: number) => void;

export class GroupCommit<T> {
  private pending: { item: T; resolve: () => void; reject: (e: unknown) => void }[] = [];
  private scheduled = false;
  private committing = false;

  constructor(
    private readonly commit: (items: T[]) => Promise<void>,
    private readonly maxBatch = 256,
    private readonly meter?: CommitMeter,
  ) {}

  submit(item: T): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.pending.length === 0 || this.committing) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    if (this.pending.length === 0 || this.committing) return;
    const batch = this.pending.splice(0, this.maxBatch);
    this.committing = true;
    const started = performance.now();
    const settle = (outcome: () => void) => {
      this.meter?.(batch.length, performance.now() - started);
      this.committing = false;
      this.flush();
      outcome();
      this.schedule();
    };
    this.commit(batch.map((p) => p.item)).then(
      () => settle(() => batch.forEach((p) => p.resolve())),
      (error) => settle(() => batch.forEach((p) => p.reject(error))),
    );
  }
}
