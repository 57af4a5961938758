/**
 * A migration's undo log, in the style of the Temporal saga sample: each step registers how to undo
 * itself before it runs (its activity may have acted even when it failed), and a rollback undoes the
 * steps in reverse order. Entries that only free resources (images) are kept apart and run after the
 * service is restored, unless the migration keeps them: when the source is gone, they are all that is
 * left of its state.
 */
export type Attempt = (what: string, fn: () => Promise<unknown>) => Promise<void>;

interface Entry {
  what: string;
  fn: () => Promise<unknown>;
}

export class Compensations {
  private readonly undo: Entry[] = [];
  private readonly freeing: Array<Entry & { keeps: string }> = [];

  /** Undone in reverse order of registration. */
  add(what: string, fn: () => Promise<unknown>): void {
    this.undo.push({ what, fn });
  }

  /** Frees `keeps` (e.g. "image x on node-a") once everything else is undone. */
  addCleanup(what: string, keeps: string, fn: () => Promise<unknown>): void {
    this.freeing.push({ what, keeps, fn });
  }

  /** What the cleanups would free, oldest first. */
  get kept(): string[] {
    return this.freeing.map((e) => e.keeps);
  }

  /**
   * Undoes every step, each one even if an earlier one failed; then frees resources unless told to keep
   * them (asked after the steps, which may have brought the source back).
   */
  async run(attempt: Attempt, o: { keepResources: () => boolean }): Promise<void> {
    for (const e of [...this.undo].reverse()) await attempt(e.what, e.fn);
    if (o.keepResources()) return;
    for (const e of [...this.freeing].reverse()) await attempt(e.what, e.fn);
  }
}
