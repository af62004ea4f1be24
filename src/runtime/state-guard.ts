import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { syncKeys, type KeyPrefix } from '../store/keys.js';

/**
 * Redis can come back empty (restarted without persistence, flushed, failed over to an empty
 * replica) and answer every command as before, while the Job Scheduler, the queue settings and
 * the cycle in flight are gone. Each sync keeps a marker key holding a random id: a marker that is
 * gone, or holds another id, means the data went, and the sync's schedule and settings are put
 * back. Replicas share the marker: the first to notice writes a new one, the others adopt it.
 */
export class StateGuard {
  /** The marker id each sync of this process last saw. */
  private readonly known = new Map<string, string>();
  private readonly restoring = new Set<string>();
  private looking: Promise<void> | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: KeyPrefix,
    private readonly restore: (sync: string) => Promise<void>,
    private readonly log: Logger,
  ) {}

  /** At start: adopt the marker the deployment has, or write one. */
  async adopt(sync: string): Promise<void> {
    this.known.set(sync, await this.mark(sync));
  }

  private async mark(sync: string): Promise<string> {
    const key = syncKeys(this.prefix, sync).epoch;
    await this.redis.set(key, randomUUID(), 'NX');
    const value = await this.redis.get(key);
    if (value === null) throw new Error(`the state marker ${key} vanished as it was written`);
    return value;
  }

  /** Syncs whose state is not known to be intact: their marker is gone or changed, or they are being restored. */
  async lost(): Promise<string[]> {
    const syncs = [...this.known.keys()];
    if (syncs.length === 0) return [];
    // One GET per sync, not MGET: on a Cluster each sync's marker lives in its own slot.
    const values = await Promise.all(syncs.map((s) => this.redis.get(syncKeys(this.prefix, s).epoch)));
    return syncs.filter((s, i) => this.restoring.has(s) || values[i] !== this.known.get(s));
  }

  /** Looks at every marker and restores the syncs that lost theirs; calls during a look share it. */
  check(): Promise<void> {
    this.looking ??= this.look().finally(() => {
      this.looking = undefined;
    });
    return this.looking;
  }

  private async look(): Promise<void> {
    for (const sync of await this.lost()) {
      if (!this.restoring.has(sync)) {
        this.restoring.add(sync);
        this.log.error(
          { sync },
          'Redis lost its data (restarted empty or flushed): restoring the schedule and queue settings; a cycle in flight is reported as failed',
        );
      }
      // A failure leaves the sync in `restoring` (not ready); the next look tries again.
      await this.restore(sync);
      this.known.set(sync, await this.mark(sync));
      this.restoring.delete(sync);
      this.log.info({ sync }, 'restored the schedule and queue settings after Redis lost its data');
    }
  }
}
