import type { Redis } from 'ioredis';
import { syncKeys } from './keys.js';

/** How often a worker process says it runs, and how long one saying counts. */
export const WORKER_BEAT_MS = 10_000;
export const WORKER_SEEN_MS = 45_000;

/**
 * Whether a worker of a sync runs somewhere: each worker process renews a key with a short expiry.
 * A key rather than BullMQ's worker list, which rests on CLIENT LIST: managed Redis services may
 * refuse that command, and behind Sentinel or Cluster it sees one node only.
 */
export class WorkerPresence {
  private readonly key: string;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    sync: string,
  ) {
    this.key = syncKeys(prefix, sync).workerSeen;
  }

  async beat(nowMs: number, seenMs = WORKER_SEEN_MS): Promise<void> {
    await this.redis.set(this.key, String(nowMs), 'PX', seenMs);
  }

  /** When a worker last said it runs, if within WORKER_SEEN_MS. */
  async lastSeen(): Promise<number | undefined> {
    const raw = await this.redis.get(this.key);
    const at = raw === null ? Number.NaN : Number(raw);
    return Number.isFinite(at) ? at : undefined;
  }
}
