/**
 * Group commit: requests arriving while a commit is pending share the next
 * one, so many concurrent acceptances pay for one transaction and one fsync.
 * Each caller's promise settles only after the commit that carried its work.
 *
 * Up to `maxInFlight` commits may be outstanding: the database applies them
 * one after the other in order, and the next one is already there when the
 * previous one ends, instead of waiting for its answer to travel back first.
 */
export class GroupCommit<T> {
  private pending: { item: T; resolve: () => void; reject: (e: unknown) => void }[] = [];
  private scheduled = false;
  private inFlight = 0;

  constructor(
    private readonly commit: (items: T[]) => Promise<void>,
    private readonly maxBatch = 256,
    private readonly maxInFlight = 4,
  ) {}

  submit(item: T): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.pending.length === 0 || this.inFlight >= this.maxInFlight) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    while (this.pending.length > 0 && this.inFlight < this.maxInFlight) {
      const batch = this.pending.splice(0, this.maxBatch);
      this.inFlight += 1;
      this.commit(batch.map((p) => p.item))
        .then(
          () => batch.forEach((p) => p.resolve()),
          (error) => batch.forEach((p) => p.reject(error)),
        )
        .finally(() => {
          this.inFlight -= 1;
          this.schedule();
        });
    }
  }
}
