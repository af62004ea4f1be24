import type { Redis } from 'ioredis';
import type { KeyPrefix } from '../store/keys.js';
import type { SyncConfig } from '../config/schema.js';
import type { CycleReport } from '../plan/report.js';
import { CycleStore } from '../store/cycle-store.js';
import { HealthStore, type SyncHealth } from '../store/health.js';
import { RateLimitPauseStore, type RateLimitPause } from '../store/rate-limit-pause.js';
import { isQuarantined } from './health.js';
import { FastLaneStore, type FeedStatus, type HeldUserDeactivation } from '../store/fast-lane.js';
import type { UserSyncReport } from '../plan/user-sync.js';
import { closeQueues, openQueues, schedulerId } from './queues.js';

/** One sync as `tvsync status` shows it (its `--json` form). */
export interface SyncStatus {
  sync: string;
  nextCycleAt: string | null;
  every: number;
  quarantined: boolean;
  health: SyncHealth;
  pause: RateLimitPause | null;
  cycles: Record<string, number>;
  operations: Record<string, number>;
  reports: CycleReport[];
  fastLane: {
    enabled: boolean;
    /** The change feeds' last polls. */
    feeds: FeedStatus[];
    /** Deactivations the fast lane held at its sliding-window threshold. */
    held: HeldUserDeactivation[];
    /** The last user syncs, newest first. */
    userSyncs: UserSyncReport[];
  };
}

/** A sync's schedule, queues, health, rate-limit pause and last `last` reports, read from Redis. */
export async function readStatus(redis: Redis, prefix: KeyPrefix, sync: SyncConfig, last: number, nowMs: number = Date.now()): Promise<SyncStatus> {
  const queues = openQueues(sync.name, redis, prefix);
  try {
    const fastLane = new FastLaneStore(redis, prefix, sync.name);
    const [scheduler, cycleCounts, operationCounts, reports, health, pause, feeds, held, userSyncs] = await Promise.all([
      queues.cycles.getJobScheduler(schedulerId(sync.name)),
      queues.cycles.getJobCounts('active', 'waiting', 'delayed'),
      queues.operations.getJobCounts('active', 'waiting', 'delayed', 'failed'),
      new CycleStore(redis, prefix, sync.name).reports(last),
      new HealthStore(redis, prefix, sync.name).load(),
      new RateLimitPauseStore(redis, prefix, sync.name).current(nowMs),
      fastLane.feeds(),
      fastLane.held(),
      fastLane.reports(last * 5),
    ]);
    const quarantined = isQuarantined(health, nowMs);
    return {
      sync: sync.name,
      nextCycleAt: scheduler?.next ? new Date(scheduler.next).toISOString() : null,
      every: sync.schedule.every,
      quarantined,
      health,
      pause: pause ?? null,
      cycles: cycleCounts,
      operations: operationCounts,
      reports,
      fastLane: { enabled: sync.fastLane.enabled, feeds, held, userSyncs },
    };
  } finally {
    await closeQueues(queues);
  }
}
