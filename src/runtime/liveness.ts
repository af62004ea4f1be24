import type { Queue, Worker } from 'bullmq';
import { LIVENESS_REASONS, type LivenessReason } from '../observe/http.js';
import { schedulerId } from './queues.js';
import { withTimeout } from './redis.js';

/*
 * Liveness: is this process still doing its job, or would a restart help? Two kinds of evidence
 * fail it, and only positive evidence does:
 *  - schedule (processes with the scheduler role): a sync's due cycle has not started within
 *    its margin, and no cycle of that sync runs anywhere (a long cycle holds the next one back
 *    on purpose: at most one cycle of a sync runs at once);
 *  - worker (processes with workers): a worker of this process has stopped (its loop ended
 *    or it closes) while the daemon is not stopping, or it takes nothing while the same job has
 *    waited at the head of its queue for longer than the margin, the queue neither paused,
 *    rate-limited nor held by a job running elsewhere (the known stall of a blocking connection
 *    that died in a fail-over without the socket noticing).
 * Redis that does not answer fails nothing here: that is readiness, and a restart would not
 * bring Redis back. The reads are bounded, and a check that could not read gives no verdict.
 */

export interface LivenessProblem {
  sync: string;
  /** The queue the problem is about (cycles, operations, changes). */
  queue: QueueKind;
  reason: LivenessReason;
}

export interface LivenessVerdict {
  live: boolean;
  problems: LivenessProblem[];
}

export type QueueKind = 'cycles' | 'operations' | 'changes';

const MIN_MARGIN_MS = 2 * 60_000;

/** How late a due cycle may start: the configured margin, else 2 min or a tenth of the interval, whichever is longer. */
export function livenessMargin(everyMs: number, configuredMs?: number): number {
  return configuredMs ?? Math.max(MIN_MARGIN_MS, Math.round(everyMs / 10));
}

/** How long a job may wait while an idle worker takes nothing: the configured margin, else 2 min (the schedule has no say). */
export function workerMargin(configuredMs?: number): number {
  return configuredMs ?? MIN_MARGIN_MS;
}

/** What Redis says about a sync's schedule. */
export interface ScheduleFacts {
  /** When the next scheduled cycle is due (undefined: no scheduler, which the state guard restores). */
  nextMs: number | undefined;
  /** Cycles of the sync running anywhere. */
  activeCycles: number;
  /** Paused by hand (tvsync never pauses a queue): waiting is what was asked for. */
  paused?: boolean;
}

/** Pure: the schedule's verdict, or undefined when it is fine. */
export function judgeSchedule(facts: ScheduleFacts, nowMs: number, marginMs: number): LivenessReason | undefined {
  if (facts.nextMs === undefined || facts.activeCycles > 0 || facts.paused) return undefined;
  return nowMs > facts.nextMs + marginMs ? LIVENESS_REASONS.overdue : undefined;
}

/** Counts what a worker's processor takes: a wrapped processor is the one sure sign of a job taken. */
export class WorkerPulse {
  inFlight = 0;
  lastTakenMs: number | undefined;

  /** The processor, counted; three parameters, so BullMQ still passes the abort signal. */
  wrap<J, R>(processor: (job: J, token?: string, signal?: AbortSignal) => Promise<R>): (job: J, token?: string, signal?: AbortSignal) => Promise<R> {
    return async (job: J, token?: string, signal?: AbortSignal) => {
      this.inFlight++;
      this.lastTakenMs = Date.now();
      try {
        return await processor(job, token, signal);
      } finally {
        this.inFlight--;
      }
    };
  }
}

/** What Redis says about a worker's queue. */
export interface QueueFacts {
  /** The job that has waited longest, if any. */
  headJobId: string | undefined;
  /** Paused, rate-limited (a 429 pause or the request rate), or its one-at-a-time slot taken elsewhere. */
  held: boolean;
}

/** One worker of this process, and what the last looks at its queue saw. */
export interface WatchedWorker {
  sync: string;
  queue: QueueKind;
  worker: Pick<Worker, 'isRunning' | 'closing'>;
  pulse: WorkerPulse;
  /** Started (a change-feed worker waits for startFeeds). */
  expected: boolean;
  /** The head job, and when a look first saw it there. */
  seen?: { jobId: string; sinceMs: number };
}

/** The verdict on a worker from the process alone, before any Redis read. */
export function judgeWorkerLocally(watch: WatchedWorker): LivenessReason | undefined {
  if (!watch.expected) return undefined;
  return !watch.worker.isRunning() || watch.worker.closing ? LIVENESS_REASONS.stopped : undefined;
}

/**
 * Pure but for `watch.seen`, which it updates: stuck when the same job has been at the head for
 * longer than the margin and this worker, idle, has taken nothing in that time.
 * `facts` undefined: Redis was not read (not needed, or it did not answer): no verdict.
 */
export function judgeWorker(watch: WatchedWorker, facts: QueueFacts | undefined, nowMs: number, marginMs: number): LivenessReason | undefined {
  const local = judgeWorkerLocally(watch);
  if (local) return local;
  if (watch.pulse.inFlight > 0) {
    delete watch.seen;
    return undefined;
  }
  if (!facts) return undefined;
  if (facts.headJobId === undefined || facts.held) {
    delete watch.seen;
    return undefined;
  }
  if (watch.seen?.jobId !== facts.headJobId) {
    watch.seen = { jobId: facts.headJobId, sinceMs: nowMs };
    return undefined;
  }
  if (watch.pulse.lastTakenMs !== undefined && watch.pulse.lastTakenMs >= watch.seen.sinceMs) {
    // It took a job meanwhile: it was alive then; the wait counts from this look.
    watch.seen.sinceMs = nowMs;
    return undefined;
  }
  return nowMs - watch.seen.sinceMs > marginMs ? LIVENESS_REASONS.stuck : undefined;
}

/** The queues of a sync as the monitor reads them. */
export interface WatchedSync {
  name: string;
  everyMs: number;
  queues: Record<QueueKind, Queue>;
}

/** Each look at Redis gets this long; /healthz answers within about that. */
const READ_TIMEOUT_MS = 1500;

/** Queues that run one job at a time across every replica (global concurrency 1). */
const ONE_AT_A_TIME: ReadonlySet<QueueKind> = new Set(['cycles', 'changes']);

/** The schedules and workers of one process, judged on demand (each /healthz). */
export class LivenessMonitor {
  private readonly syncs = new Map<string, WatchedSync>();
  readonly workers: WatchedWorker[] = [];

  constructor(
    private readonly scheduler: boolean,
    private readonly configuredMarginMs: number | undefined,
  ) {}

  addSync(sync: WatchedSync): void {
    this.syncs.set(sync.name, sync);
  }

  addWorker(sync: string, queue: QueueKind, worker: WatchedWorker['worker'], pulse: WorkerPulse, expected: boolean): WatchedWorker {
    const watch: WatchedWorker = { sync, queue, worker, pulse, expected };
    this.workers.push(watch);
    return watch;
  }

  private margin(sync: string): number {
    return livenessMargin(this.syncs.get(sync)?.everyMs ?? 0, this.configuredMarginMs);
  }

  private get workerMargin(): number {
    return workerMargin(this.configuredMarginMs);
  }

  async judge(nowMs: number = Date.now()): Promise<LivenessVerdict> {
    const problems: LivenessProblem[] = [];
    const schedules = this.scheduler
      ? [...this.syncs.values()].map(async (sync) => {
          const facts = await bounded(scheduleFacts(sync, nowMs - this.margin(sync.name)));
          const reason = facts && judgeSchedule(facts, nowMs, this.margin(sync.name));
          if (reason) problems.push({ sync: sync.name, queue: 'cycles', reason });
        })
      : [];
    const workers = this.workers.map(async (watch) => {
      const local = judgeWorkerLocally(watch);
      const queue = this.syncs.get(watch.sync)?.queues[watch.queue];
      // A worker busy or stopped needs no read; an idle one costs one LRANGE when nothing waits.
      const facts = local || watch.pulse.inFlight > 0 || !queue ? undefined : await bounded(queueFacts(queue, ONE_AT_A_TIME.has(watch.queue)));
      const reason = judgeWorker(watch, facts, nowMs, this.workerMargin);
      if (reason) problems.push({ sync: watch.sync, queue: watch.queue, reason });
    });
    await Promise.all([...schedules, ...workers]);
    problems.sort((a, b) => (a.sync < b.sync ? -1 : a.sync > b.sync ? 1 : 0));
    return { live: problems.length === 0, problems };
  }
}

/** The read, or undefined when Redis did not answer in time: no verdict then. */
async function bounded<T>(read: Promise<T>): Promise<T | undefined> {
  return withTimeout(read, READ_TIMEOUT_MS, () => new Error('no answer')).catch(() => undefined);
}

/** `lateIfBeforeMs`: a cycle due before then is late; only then does it matter whether a cycle holds it back. */
async function scheduleFacts(sync: WatchedSync, lateIfBeforeMs: number): Promise<ScheduleFacts> {
  const cycles = sync.queues.cycles;
  const scheduler = await cycles.getJobScheduler(schedulerId(sync.name));
  const nextMs = scheduler?.next ?? undefined;
  if (nextMs === undefined || nextMs >= lateIfBeforeMs) return { nextMs, activeCycles: 0 };
  const [activeCycles, paused] = await Promise.all([cycles.getActiveCount(), cycles.isPaused()]);
  return { nextMs, activeCycles, paused };
}

async function queueFacts(queue: Queue, oneAtATime: boolean): Promise<QueueFacts> {
  const [headJobId] = await queue.getRanges(['wait'], 0, 0, true);
  if (headJobId === undefined) return { headJobId, held: false };
  const [paused, limitTtl, active] = await Promise.all([queue.isPaused(), queue.getRateLimitTtl(), oneAtATime ? queue.getActiveCount() : 0]);
  return { headJobId, held: paused || limitTtl > 0 || active > 0 };
}
