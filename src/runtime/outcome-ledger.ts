import type { OperationResult } from '../plan/report.js';
import type { CycleStore } from '../store/cycle-store.js';
import type { SyncState } from '../store/sync-state.js';

/** One operation's outcome and the link a create made, waiting to be written. */
export interface LedgerEntry {
  cycleId: string;
  result: OperationResult;
  /** [IdP id, TeamViewer user id] of a created user: written before the outcome that names it. */
  links?: readonly (readonly [sourceId: string, tvUserId: string])[];
}

export interface OutcomeLedgerDeps {
  store: Pick<CycleStore, 'recordResults'>;
  state: Pick<SyncState, 'setLinks'>;
  /** The observers of the outcomes of each write (metrics, provisioning log). */
  onResults?: (results: readonly OperationResult[], cycleId: string) => void | Promise<void>;
}

export interface OutcomeLedgerOptions {
  /** How long an outcome may wait for others to share its write. */
  lingerMs: number;
  /** Outcomes that are written at once, without waiting out the linger. */
  maxPending: number;
}

export const DEFAULT_LEDGER: OutcomeLedgerOptions = { lingerMs: 10, maxPending: 200 };

interface Waiting {
  entry: LedgerEntry;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Writes the outcomes of one sync's operations in groups: every outcome that finished within a
 * few milliseconds of another (from any job of this worker) shares one links write, one outcomes
 * write and one provisioning-log call, instead of four Redis commands each. At 100k operations
 * this is most of what the queue costs beyond the TeamViewer calls themselves.
 *
 * An outcome is acknowledged (its promise settles) only once Redis holds it, and a job completes
 * only after its outcomes are acknowledged, so a finished job never has an unwritten outcome. A
 * worker that dies with outcomes unwritten leaves its job stalled; the re-delivery looks up each
 * create without a recorded outcome before creating, as after any crash mid-request.
 */
export class OutcomeLedger {
  private waiting: Waiting[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly deps: OutcomeLedgerDeps,
    private readonly options: OutcomeLedgerOptions = DEFAULT_LEDGER,
  ) {}

  /** Queues an outcome; the promise settles when it is written (or its write failed). */
  add(entry: LedgerEntry): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ entry, resolve, reject });
      if (this.waiting.length >= this.options.maxPending) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.options.lingerMs);
    });
  }

  /** Writes what is waiting now: a job about to finish does not wait out the linger. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.waiting;
    if (batch.length === 0) return;
    this.waiting = [];
    const byCycle = new Map<string, Waiting[]>();
    for (const w of batch) {
      const group = byCycle.get(w.entry.cycleId);
      if (group) group.push(w);
      else byCycle.set(w.entry.cycleId, [w]);
    }
    for (const [cycleId, group] of byCycle) void this.write(cycleId, group);
  }

  private async write(cycleId: string, group: readonly Waiting[]): Promise<void> {
    try {
      const links: (readonly [string, string])[] = [];
      const results: OperationResult[] = [];
      for (const { entry } of group) {
        if (entry.links) links.push(...entry.links);
        results.push(entry.result);
      }
      // Issued in the same tick on one connection: the links reach Redis before the outcomes naming them.
      const linksWritten = links.length ? this.deps.state.setLinks(links) : undefined;
      await Promise.all([linksWritten, this.deps.store.recordResults(cycleId, results), this.deps.onResults?.(results, cycleId)]);
      for (const w of group) w.resolve();
    } catch (err) {
      for (const w of group) w.reject(err);
    }
  }
}
