import { Queue, type ConnectionOptions, type JobsOptions } from 'bullmq';
import type { TvsyncConfig } from '../config/schema.js';
import { queuePrefix, type KeyPrefix } from '../store/keys.js';
import { queueTelemetry } from '../observe/traces.js';

/** Knobs of the runtime that are not per-sync config; tests shorten them. */
export interface RuntimeOptions {
  /** Attempts of an operation job for transient failures (the first included). */
  opAttempts: number;
  /** First retry delay of an operation; doubles each attempt, with jitter. */
  opBackoffMs: number;
  /** First retry delay of a failed TeamViewer read at the start of a cycle. */
  readBackoffMs: number;
  /** Wait after a 429 that named no Retry-After. */
  rateLimitFallbackMs: number;
  /** Longest pause a 429's Retry-After may impose on the sync. */
  maxRetryAfterMs: number;
  /** How often a cycle looks at its operations' progress. */
  pollMs: number;
  /** A cycle that has not seen all its operations finish by then reports the rest as lost. */
  cycleTimeoutMs: number;
  /** Time running jobs get to finish on SIGTERM before they are handed back. */
  shutdownGraceMs: number;
  /** Lock and stall detection: a killed worker's jobs go to another worker after about this long. */
  lockDurationMs: number;
  stalledIntervalMs: number;
  /**
   * Operations of a cycle are put several to a job once the cycle has this many jobs' worth or
   * more (so every open job has work until the end), at most opBatchMax to a job.
   */
  opJobsPerCycle: number;
  opBatchMax: number;
  /** How often the daemon looks whether Redis lost its data (also on every reconnect). */
  stateCheckMs: number;
  /** How late a due cycle or a waiting job may be before liveness fails; unset: livenessMargin() of the schedule. */
  livenessMarginMs?: number;
}

/** The runtime knobs a config file sets (`runtime:`), in the daemon's terms. */
export function runtimeFromConfig(runtime: TvsyncConfig['runtime']): Partial<RuntimeOptions> {
  return {
    opAttempts: runtime.operationAttempts,
    opBackoffMs: runtime.operationBackoff,
    readBackoffMs: runtime.readBackoff,
    rateLimitFallbackMs: runtime.rateLimitFallback,
    maxRetryAfterMs: runtime.maxRetryAfter,
    cycleTimeoutMs: runtime.cycleTimeout,
    shutdownGraceMs: runtime.shutdownGrace,
    lockDurationMs: runtime.lockDuration,
    stalledIntervalMs: runtime.stalledInterval,
    ...(runtime.livenessMargin !== undefined ? { livenessMarginMs: runtime.livenessMargin } : {}),
  };
}

export const DEFAULT_RUNTIME: RuntimeOptions = {
  opAttempts: 8,
  opBackoffMs: 1000,
  readBackoffMs: 1000,
  rateLimitFallbackMs: 10_000,
  maxRetryAfterMs: 5 * 60_000,
  pollMs: 250,
  cycleTimeoutMs: 4 * 3_600_000,
  shutdownGraceMs: 25_000,
  lockDurationMs: 30_000,
  stalledIntervalMs: 30_000,
  opJobsPerCycle: 256,
  opBatchMax: 100,
  stateCheckMs: 5000,
};

export interface CycleJobData {
  /** change: the fast lane saw a change that concerns more than one person (a group renamed, a new export). */
  trigger: 'schedule' | 'manual' | 'once' | 'change';
  requestedAt?: number;
}

export const queueNames = (sync: string) => ({ cycles: `cycles-${sync}`, operations: `operations-${sync}`, changes: `changes-${sync}` });

export const schedulerId = (sync: string) => `cycle-${sync}`;
/** The fast lane's poll of the sync's change feed. */
export const pollSchedulerId = (sync: string) => `poll-${sync}`;
export const manualDedupId = (sync: string) => `manual-${sync}`;

export const CYCLE_JOB_OPTIONS: JobsOptions = { attempts: 1, removeOnComplete: { count: 200 }, removeOnFail: { count: 200 } };

/** Queues of one sync. The cycle queue runs one job at a time across every replica (global concurrency 1). */
export interface SyncQueues {
  cycles: Queue<CycleJobData>;
  operations: Queue;
  /** The fast lane's polls: one at a time across every replica. */
  changes: Queue;
}

export function openQueues(sync: string, connection: ConnectionOptions, keyPrefix: KeyPrefix): SyncQueues {
  const names = queueNames(sync);
  const prefix = queuePrefix(keyPrefix, sync);
  const telemetry = queueTelemetry();
  return {
    cycles: new Queue<CycleJobData>(names.cycles, { connection, prefix, ...telemetry }),
    operations: new Queue(names.operations, { connection, prefix, ...telemetry }),
    changes: new Queue(names.changes, { connection, prefix, ...telemetry }),
  };
}

export async function closeQueues(queues: SyncQueues): Promise<void> {
  await Promise.all([queues.cycles.close(), queues.operations.close(), queues.changes.close()]);
}

/** 20261201T020000: an instant in UTC to the second, as cycle ids carry it. */
function compactTime(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').slice(0, 15);
}

/**
 * Ids are readable (`--cycle ID`), valid in BullMQ job ids (no ":") and stable across re-deliveries
 * of the same job. A scheduled cycle is named by the time it was due (its job id holds it:
 * `repeat:<scheduler>:<ms>`), e.g. 20261201T020000-scheduled; another by when it was queued and
 * its job number, e.g. 20261201T015430-12.
 */
export function cycleIdOf(job: { id?: string | undefined; timestamp: number }): string {
  const scheduled = /^repeat:.*:(\d+)$/.exec(job.id ?? '');
  if (scheduled?.[1]) return `${compactTime(Number(scheduled[1]))}-scheduled`;
  const id = (job.id ?? 'x').replace(/^repeat:[^:]*:/, 's').replace(/[^A-Za-z0-9_-]/g, '-');
  return `${compactTime(job.timestamp)}-${id}`;
}

/** BullMQ job ids may not contain ":" nor be all digits; encodeURIComponent keeps distinct keys distinct. */
export function operationJobId(cycleId: string, key: string): string {
  return `${cycleId}.${encodeURIComponent(key)}`;
}

/**
 * Operations per job for a list of n: a function of n and the options only, so a resumed cycle
 * cuts its stored plan into the same batches (and the same job ids) as the attempt before it.
 */
export function operationBatchSize(n: number, options: Pick<RuntimeOptions, 'opJobsPerCycle' | 'opBatchMax'>): number {
  return Math.max(1, Math.min(options.opBatchMax, Math.floor(n / Math.max(1, options.opJobsPerCycle))));
}
