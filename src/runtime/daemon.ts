import { setTimeout as sleep } from 'node:timers/promises';
import { Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { SyncConfig, TvsyncConfig } from '../config/schema.js';
import { processCycle, type CycleDeps } from './cycle.js';
import { CycleStore } from './cycle-store.js';
import { processOperation, StopFlagCache, type OperationDeps, type OperationJobData } from './operation-worker.js';
import type { SyncSides } from './prepare.js';
import { closeQueues, cycleIdOf, CYCLE_JOB_OPTIONS, DEFAULT_RUNTIME, openQueues, queueNames, runtimeFromConfig, schedulerId, type CycleJobData, type RuntimeOptions, type SyncQueues } from './queues.js';
import { connectRedis } from './redis.js';
import { buildReport, type CycleReport, type OperationResult } from './report.js';
import type { Plan } from '../plan/types.js';
import { buildSyncSides } from './wiring.js';
import { HealthStore } from './health.js';
import { ApprovalStore } from '../store/approvals.js';
import { RateLimitPauseStore, type RateLimitPause } from '../store/rate-limit-pause.js';

export interface DaemonOptions {
  scheduler: boolean;
  worker: boolean;
  /** Only these syncs (default: all in the config). */
  syncs?: string[];
  runtime?: Partial<RuntimeOptions>;
  /** Hooks for metrics and the provisioning log. */
  onReport?: (report: CycleReport) => void | Promise<void>;
  /** Called once per cycle with its plan, after it is persisted (the provisioning log records the skips). */
  onPlanned?: (sync: string, cycleId: string, plan: Plan) => void | Promise<void>;
  onResult?: (sync: string, cycleId: string, result: OperationResult) => void | Promise<void>;
  onResponse?: (sync: string, info: { method: string; path: string; status: number; ms: number }) => void;
  /** A 429 paused the sync's operations. */
  onPause?: (sync: string, pause: RateLimitPause) => void;
}

export interface SyncRuntime {
  sync: SyncConfig;
  sides: SyncSides;
  queues: SyncQueues;
  store: CycleStore;
  health: HealthStore;
  approvals: ApprovalStore;
}

/**
 * The long-running part of tvsync: per sync, a Job Scheduler (one cycle every `schedule.every`),
 * a cycle worker (one cycle at a time across every replica) and operation workers.
 */
export class Daemon {
  readonly syncs = new Map<string, SyncRuntime>();
  private readonly workers: Worker[] = [];
  private readonly connections: Redis[] = [];
  private stopping?: Promise<void>;

  private constructor(
    readonly config: TvsyncConfig,
    readonly redis: Redis,
    readonly options: RuntimeOptions,
    private readonly log: Logger,
  ) {}

  static async start(config: TvsyncConfig, log: Logger, opts: DaemonOptions): Promise<Daemon> {
    const redis = connectRedis(config.redis.url, 'producer');
    const daemon = new Daemon(config, redis, { ...DEFAULT_RUNTIME, ...runtimeFromConfig(config.runtime), ...opts.runtime }, log);
    try {
      await redis.ping();
      const selected = opts.syncs ? config.syncs.filter((s) => opts.syncs?.includes(s.name)) : config.syncs;
      for (const sync of selected) await daemon.startSync(sync, opts);
    } catch (err) {
      await daemon.stop();
      throw err;
    }
    return daemon;
  }

  private async startSync(sync: SyncConfig, opts: DaemonOptions): Promise<void> {
    const { prefix, url } = this.config.redis;
    const sides = buildSyncSides(sync, {
      redis: this.redis,
      prefix,
      log: this.log,
      readBackoff: { attempts: 6, baseMs: this.options.readBackoffMs, capMs: 60 * this.options.readBackoffMs, maxWaitMs: this.options.maxRetryAfterMs },
      ...(opts.onResponse ? { onResponse: (info: Parameters<NonNullable<DaemonOptions['onResponse']>>[1]) => opts.onResponse?.(sync.name, info) } : {}),
    });
    const queues = openQueues(sync.name, this.redis, prefix);
    const store = new CycleStore(this.redis, prefix, sync.name);
    const health = new HealthStore(this.redis, prefix, sync.name);
    const approvals = new ApprovalStore(this.redis, prefix, sync.name);
    const runtime: SyncRuntime = { sync, sides, queues, store, health, approvals };
    this.syncs.set(sync.name, runtime);

    // Idempotent, and shared by every replica through Redis: at most one cycle of this sync runs at once.
    await queues.cycles.setGlobalConcurrency(1);
    if (opts.scheduler) {
      await queues.cycles.upsertJobScheduler(schedulerId(sync.name), { every: sync.schedule.every }, { name: 'cycle', data: { trigger: 'schedule' }, opts: CYCLE_JOB_OPTIONS });
    }
    if (!opts.worker) return;

    const log = this.log.child({ sync: sync.name });
    const operationDeps: OperationDeps = {
      sides,
      store,
      stopFlags: new StopFlagCache(store),
      queue: queues.operations,
      options: this.options,
      log,
      pauses: new RateLimitPauseStore(this.redis, prefix, sync.name),
      ...(opts.onPause ? { onPause: (pause: RateLimitPause) => opts.onPause?.(sync.name, pause) } : {}),
      ...(opts.onResult ? { onResult: (result: OperationResult, cycleId: string) => opts.onResult?.(sync.name, cycleId, result) } : {}),
    };
    const cycleDeps: CycleDeps = {
      sides,
      store,
      operations: queues.operations,
      options: this.options,
      log,
      ...(opts.onReport ? { onReport: opts.onReport } : {}),
      ...(opts.onPlanned ? { onPlanned: (cycleId: string, plan: Plan) => opts.onPlanned?.(sync.name, cycleId, plan) } : {}),
      health,
      approvals,
      approved: () => approvals.deactivations(),
      approvedGroupDeletions: () => approvals.groupDeletions(),
    };
    const common = { prefix, lockDuration: this.options.lockDurationMs, stalledInterval: this.options.stalledIntervalMs };
    const names = queueNames(sync.name);

    const cycleWorker = new Worker<CycleJobData, CycleReport | undefined>(names.cycles, (job: Job<CycleJobData>, token?: string, signal?: AbortSignal) => processCycle(job, cycleDeps, token, signal), {
      ...common,
      connection: this.workerConnection(url),
      concurrency: 1,
      // A cycle whose replica died is resumed elsewhere from its stored plan; a few stalls are expected in a rollout.
      maxStalledCount: 5,
    });
    const operationWorker = new Worker<OperationJobData, OperationResult | undefined>(names.operations, (job: Job<OperationJobData>) => processOperation(job, operationDeps), {
      ...common,
      connection: this.workerConnection(url),
      concurrency: sync.target.concurrency,
      limiter: { max: Math.max(1, Math.round(sync.target.requestsPerSecond)), duration: 1000 },
      maxStalledCount: 3,
      // 429 answers re-run a job without spending an attempt; this bounds how long that may go on.
      maxStartedAttempts: this.options.opAttempts + 200,
    });
    operationWorker.on('failed', (job, err) => {
      // A job that ended without recording an outcome (stalled too often, started too often) is recorded here.
      if (!job) return;
      void recordLostOperation(store, job, err).catch((e: unknown) => log.error({ err: e }, 'could not record a lost operation'));
    });
    cycleWorker.on('failed', (job, err) => {
      // A cycle that died outside its own error handling (stalled too often, Redis lost mid-report)
      // still ends in a report, so `sync-now --wait` and `run --once` do not wait for ever.
      if (!job) return;
      void recordFailedCycle(store, job, err).catch((e: unknown) => log.error({ err: e }, 'could not record a failed cycle'));
    });
    for (const worker of [cycleWorker, operationWorker]) {
      worker.on('error', (err) => log.error({ err: err.message }, 'worker error'));
      this.workers.push(worker);
    }
  }

  private workerConnection(url: string): Redis {
    const connection = connectRedis(url, 'worker');
    this.connections.push(connection);
    return connection;
  }

  runtime(sync: string): SyncRuntime {
    const runtime = this.syncs.get(sync);
    if (!runtime) throw new Error(`sync ${sync} is not running in this process`);
    return runtime;
  }

  /**
   * Stops taking jobs, lets running ones finish within the grace time, then hands the rest back
   * (a cycle moves itself back to the queue; an operation becomes stalled and is picked up again).
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const closing = Promise.all(this.workers.map((w) => w.close()));
      // Unref'd: a timer left over from the race must not keep the process alive once all is closed.
      const graceful = await Promise.race([closing.then(() => true), sleep(this.options.shutdownGraceMs, undefined, { ref: false }).then(() => false)]);
      if (!graceful) {
        this.log.warn('running jobs did not finish in time; handing them back');
        for (const worker of this.workers) worker.cancelAllJobs('shutdown');
        await Promise.race([closing, sleep(2000, undefined, { ref: false })]);
        await Promise.all(this.workers.map((w) => w.close(true)));
      }
      await Promise.all([...this.syncs.values()].map((s) => closeQueues(s.queues)));
      await Promise.all(this.connections.map((c) => c.quit().catch(() => c.disconnect())));
      await this.redis.quit().catch(() => this.redis.disconnect());
    })();
    return this.stopping;
  }
}

async function recordLostOperation(store: CycleStore, job: Job<OperationJobData>, err: Error): Promise<void> {
  const { cycleId, key, op } = job.data;
  const attemptsLeft = job.attemptsMade < (job.opts.attempts ?? 1);
  if (attemptsLeft && !/stalled more than|started more than|UnrecoverableError/i.test(`${err.name} ${err.message}`)) return;
  const [, done] = await store.stoppedOrDone(cycleId, key);
  if (done) return;
  const who = 'sourceGroupId' in op ? { sourceId: op.sourceGroupId, group: 'displayName' in op ? op.displayName : op.tvGroupId } : { sourceId: op.sourceId, email: op.email };
  await store.recordResult(cycleId, { key, kind: op.kind, ...who, after: {}, status: 'failed', failureClass: 'transient', message: `${op.kind}: the job failed without an outcome: ${err.message}`, attempts: job.attemptsMade });
}

async function recordFailedCycle(store: CycleStore, job: Job<CycleJobData>, err: Error): Promise<void> {
  const cycleId = cycleIdOf(job);
  if (await store.report(cycleId)) return;
  const stored = await store.load(cycleId);
  const startedAtMs = stored?.startedAtMs || job.timestamp;
  await store.stop(cycleId, `the cycle failed: ${err.message}`);
  const report = buildReport({
    sync: store.sync,
    cycleId,
    trigger: job.data.trigger,
    ...(job.data.requestedAt !== undefined ? { requestedAt: job.data.requestedAt } : {}),
    startedAtMs,
    finishedAtMs: Date.now(),
    ...(stored?.plan ? { plan: stored.plan } : {}),
    results: await store.results(cycleId),
    failure: { failureClass: 'internal', message: `the cycle job failed: ${err.message}` },
  });
  await store.finish(cycleId, report);
}
