import { setTimeout as sleep } from 'node:timers/promises';
import { Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { SyncConfig, TvsyncConfig } from '../config/schema.js';
import { processCycle, type CycleDeps } from './cycle.js';
import { CycleStore } from '../store/cycle-store.js';
import { InFlightLimit, withinLimit } from './in-flight.js';
import {
  isBatchJob,
  processOperation,
  processOperationBatch,
  StopFlagCache,
  type OperationBatchJobData,
  type OperationDeps,
  type OperationJobData,
} from './operation-worker.js';
import { RequestSlots } from './request-slots.js';
import type { SyncSides } from './prepare.js';
import {
  closeQueues,
  cycleIdOf,
  CYCLE_JOB_OPTIONS,
  DEFAULT_RUNTIME,
  openQueues,
  queueNames,
  runtimeFromConfig,
  schedulerId,
  pollSchedulerId,
  type CycleJobData,
  type RuntimeOptions,
  type SyncQueues,
} from './queues.js';
import { closeRedis, connectRedis, RedisOutage, verifyRedis, withTimeout } from './redis.js';
import { StateGuard } from './state-guard.js';
import { buildReport, type CycleReport, type OperationResult } from '../plan/report.js';
import { OutcomeLedger } from './outcome-ledger.js';
import type { GroupPlan } from '../plan/group-types.js';
import type { Plan } from '../plan/types.js';
import { buildSyncSides } from './wiring.js';
import { HealthStore } from '../store/health.js';
import { WORKER_BEAT_MS, WorkerPresence } from '../store/worker-presence.js';
import { queuePrefix } from '../store/keys.js';
import { ApprovalStore } from '../store/approvals.js';
import { RateLimitPauseStore, type RateLimitPause } from '../store/rate-limit-pause.js';
import type { ResponseInfo } from '../net/response-info.js';
import type { ChangeFeed, ChangeHint, HookAnswer, HookReceiver, HookRequest } from '../connectors/changes.js';
import { FastLaneStore, type FeedStatus } from '../store/fast-lane.js';
import type { UserSyncReport } from '../plan/user-sync.js';
import type { FastLaneOrigin } from '../observe/provisioning-log.js';
import { pollFeed, processUserSyncJob, receiveHook, USER_SYNC_JOB, type FastLaneHooks } from './fast-lane.js';
import type { UserSyncJobData } from './user-sync.js';
import type { DirectorySource } from '../connectors/source.js';
import { annotateActiveSpan, startTracing, tracingSettings, tracingStarted, queueTelemetry, type Tracing } from '../observe/traces.js';
import { LivenessMonitor, WorkerPulse, type LivenessVerdict, type WatchedWorker } from './liveness.js';

/** Operation jobs open per TeamViewer request the target's concurrency allows. */
const OPEN_JOBS_PER_REQUEST = 2;
import { rateLimitsOf } from '../net/adaptive-rate.js';
import { RequestRateStore } from '../store/request-rate.js';
import { RequestRateGovernor } from './request-rate.js';

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
  /** Called once per cycle with its group plan, after it is persisted (the provisioning log records the group skips). */
  onGroupsPlanned?: (sync: string, cycleId: string, plan: GroupPlan) => void | Promise<void>;
  /** Outcomes as they are recorded, several at a time where they were written together (metrics, provisioning log). */
  onResults?: (sync: string, cycleId: string, results: readonly OperationResult[], via?: FastLaneOrigin) => void | Promise<void>;
  onResponse?: (sync: string, info: ResponseInfo) => void;
  /** The request rate in force for a sync's operations, each time it is decided. */
  onRequestRate?: (sync: string, rate: number) => void;
  /** A 429 paused the sync's operations. */
  onPause?: (sync: string, pause: RateLimitPause) => void;
  /** Where connection errors go (one log line per outage); shared with the caller's own connections. */
  outage?: RedisOutage;
  /** The fast lane: a user sync finished, a feed named changes, a feed was polled. */
  onUserSync?: (sync: string, report: UserSyncReport) => void | Promise<void>;
  onHints?: (sync: string, feed: string, hints: readonly ChangeHint[], detectedAtMs: number) => void;
  onPoll?: (sync: string, status: FeedStatus) => void;
  /**
   * Leaves the change-feed workers stopped until startFeeds(): a feed whose first poll registers a
   * hook (Graph subscriptions are validated at once) must find the HTTP endpoint listening.
   */
  deferFeeds?: boolean;
  /** Swaps a sync's IdP connector for another source (rehearsals and tests against a scripted directory). */
  sourceFor?: (sync: SyncConfig) => DirectorySource | undefined;
}

export interface SyncRuntime {
  sync: SyncConfig;
  sides: SyncSides;
  queues: SyncQueues;
  store: CycleStore;
  health: HealthStore;
  approvals: ApprovalStore;
  fastLane: FastLaneStore;
  /** The polled change feed, when the fast lane is on and the source has one. */
  feed?: ChangeFeed;
  /** The pushed change feed, made on its first request and kept (its checks and counters live in it). */
  hookReceiver?: Promise<HookReceiver | undefined>;
  fastLaneHooks: FastLaneHooks;
}

/**
 * The long-running part of tvsync: per sync, a Job Scheduler (one cycle every `schedule.every`),
 * a cycle worker (one cycle at a time across every replica) and operation workers.
 */
export class Daemon {
  readonly syncs = new Map<string, SyncRuntime>();
  /** Notices when Redis lost its data and puts the schedule and queue settings back. */
  readonly guard: StateGuard;
  private readonly workers: Worker[] = [];
  private readonly cycleWorkers: Worker[] = [];
  private readonly feedWorkers: Worker[] = [];
  private readonly feedWatches: WatchedWorker[] = [];
  private readonly connections: Redis[] = [];
  /** Every worker's non-blocking commands; BullMQ gives each worker a blocking connection of its own. */
  private sharedWorkerConnection?: Redis;
  private readonly livenessMonitor: LivenessMonitor;
  private queueRedis?: Redis;
  private stateTimer?: NodeJS.Timeout;
  private presenceTimer?: NodeJS.Timeout;
  private presences: WorkerPresence[] = [];
  private stopping?: Promise<void>;
  /** The trace exporter this daemon started (flushed and stopped with it). */
  private tracing?: Tracing;

  private constructor(
    readonly config: TvsyncConfig,
    readonly redis: Redis,
    readonly options: RuntimeOptions,
    private readonly log: Logger,
    readonly outage: RedisOutage,
    private readonly scheduler: boolean,
  ) {
    this.guard = new StateGuard(redis, config.redis.prefix, (sync) => this.applyQueueSettings(this.runtime(sync)), log);
    this.livenessMonitor = new LivenessMonitor(scheduler, options.livenessMarginMs);
  }

  static async start(config: TvsyncConfig, log: Logger, opts: DaemonOptions): Promise<Daemon> {
    const outage = opts.outage ?? new RedisOutage(log, config.redis);
    const redis = connectRedis(config.redis, 'producer', outage);
    const daemon = new Daemon(config, redis, { ...DEFAULT_RUNTIME, ...runtimeFromConfig(config.runtime), ...opts.runtime }, log, outage, opts.scheduler);
    try {
      // Before any queue opens: queues and workers take the trace context from it.
      const traces = tracingSettings(config.telemetry.traces, process.env);
      if (traces && !tracingStarted()) daemon.tracing = await startTracing(traces, log);
      await verifyRedis(redis, config.redis, 10_000);
      const selected = opts.syncs ? config.syncs.filter((s) => opts.syncs?.includes(s.name)) : config.syncs;
      for (const sync of selected) await daemon.startSync(sync, opts);
      if (opts.worker) await daemon.beatPresence();
    } catch (err) {
      await daemon.stop();
      throw err;
    }
    daemon.stateTimer = setInterval(() => daemon.checkState(), daemon.options.stateCheckMs);
    daemon.stateTimer.unref();
    // After a reconnect Redis may be a fresh, empty one: look at once.
    redis.on('ready', () => daemon.checkState());
    return daemon;
  }

  /** Says, per sync, that a worker runs here, now and every WORKER_BEAT_MS (tvsync sync-now refuses to queue a cycle nobody would run). */
  private async beatPresence(): Promise<void> {
    this.presences = [...this.syncs.keys()].map((name) => new WorkerPresence(this.redis, this.config.redis.prefix, name));
    const beat = () => Promise.all(this.presences.map((p) => p.beat()));
    await beat();
    // During an outage the connection's own error log says enough.
    this.presenceTimer = setInterval(() => void beat().catch(() => undefined), WORKER_BEAT_MS);
    this.presenceTimer.unref();
  }

  /** Looks whether Redis lost its data (and restores); an answer also ends a logged outage. */
  checkState(): void {
    if (this.stopping) return;
    this.guard.check().then(
      () => this.outage.answered(),
      (err: unknown) => this.outage.error(err, 'state check'),
    );
  }

  /** Shared by every replica through Redis, and lost with Redis's data: set at start and after a loss. */
  private async applyQueueSettings(runtime: SyncRuntime): Promise<void> {
    // Idempotent: at most one cycle of this sync runs at once, across every replica.
    await runtime.queues.cycles.setGlobalConcurrency(1);
    await runtime.queues.changes.setGlobalConcurrency(1);
    if (this.scheduler) {
      await runtime.queues.cycles.upsertJobScheduler(
        schedulerId(runtime.sync.name),
        { every: runtime.sync.schedule.every },
        { name: 'cycle', data: { trigger: 'schedule' }, opts: CYCLE_JOB_OPTIONS },
      );
      if (runtime.feed) {
        await runtime.queues.changes.upsertJobScheduler(
          pollSchedulerId(runtime.sync.name),
          { every: runtime.feed.everyMs },
          { name: 'poll', data: {}, opts: { removeOnComplete: true, removeOnFail: { count: 20 } } },
        );
      } else {
        await runtime.queues.changes.removeJobScheduler(pollSchedulerId(runtime.sync.name));
      }
    }
  }

  private async startSync(sync: SyncConfig, opts: DaemonOptions): Promise<void> {
    const { prefix } = this.config.redis;
    const source = opts.sourceFor?.(sync);
    // The rate is learned from every answer TeamViewer gives this process, reads and writes alike.
    const governor = opts.worker
      ? new RequestRateGovernor({
          store: new RequestRateStore(this.redis, prefix, sync.name),
          limits: rateLimitsOf(sync.target),
          log: this.log.child({ sync: sync.name }),
          ...(opts.onRequestRate ? { onRate: (rate: number) => opts.onRequestRate?.(sync.name, rate) } : {}),
        })
      : undefined;
    const sides = buildSyncSides(sync, {
      ...(source ? { source } : {}),
      redis: this.redis,
      prefix,
      log: this.log,
      ...(governor ? { readRate: () => governor.rate } : {}),
      readBackoff: { attempts: 6, baseMs: this.options.readBackoffMs, capMs: 60 * this.options.readBackoffMs, maxWaitMs: this.options.maxRetryAfterMs },
      ...(opts.onResponse || governor
        ? {
            onResponse: (info: ResponseInfo) => {
              governor?.observe(info);
              opts.onResponse?.(sync.name, info);
            },
          }
        : {}),
    });
    const queues = openQueues(sync.name, this.queueConnection(), prefix);
    for (const queue of [queues.cycles, queues.operations, queues.changes]) queue.on('error', (err) => this.outage.error(err, 'queue'));
    const store = new CycleStore(this.redis, prefix, sync.name);
    const health = new HealthStore(this.redis, prefix, sync.name);
    const approvals = new ApprovalStore(this.redis, prefix, sync.name);
    const fastLane = new FastLaneStore(this.redis, prefix, sync.name);
    const fastLaneHooks: FastLaneHooks = {
      ...(opts.onUserSync ? { onUserSync: (report: UserSyncReport) => opts.onUserSync?.(sync.name, report) } : {}),
      ...(opts.onHints ? { onHints: (feed: string, hints: readonly ChangeHint[], at: number) => opts.onHints?.(sync.name, feed, hints, at) } : {}),
      ...(opts.onPoll ? { onPoll: (status: FeedStatus) => opts.onPoll?.(sync.name, status) } : {}),
    };
    const feed = sync.fastLane.enabled
      ? await sides.source.changeFeed?.().catch((err: unknown) => {
          // A source that cannot even be set up fails its cycles with the reason; the fast lane just stays off.
          this.log.warn({ sync: sync.name, err: err instanceof Error ? err.message : String(err) }, 'the change feed could not be set up; only cycles run');
          return undefined;
        })
      : undefined;
    const runtime: SyncRuntime = { sync, sides, queues, store, health, approvals, fastLane, fastLaneHooks, ...(feed ? { feed } : {}) };
    this.syncs.set(sync.name, runtime);
    this.livenessMonitor.addSync({ name: sync.name, everyMs: sync.schedule.every, queues });

    await this.guard.adopt(sync.name);
    await this.applyQueueSettings(runtime);
    if (!opts.worker || !governor) return;
    await governor.load();

    const log = this.log.child({ sync: sync.name });
    // The operation workers' TeamViewer calls stay within the target's concurrency, whatever the number of open jobs.
    const workerSides: SyncSides = { ...sides, client: withinLimit(sides.client, new InFlightLimit(sync.target.concurrency)) };
    const operationDeps: OperationDeps = {
      sides: workerSides,
      store,
      stopFlags: new StopFlagCache(store),
      queue: queues.operations,
      options: this.options,
      log,
      pauses: new RateLimitPauseStore(this.redis, prefix, sync.name),
      fastLane,
      requestSlots: new RequestSlots(this.redis, queues.operations.toKey('limiter'), () => governor.limiter()),
      closing: () => this.stopping !== undefined,
      ...(opts.onPause ? { onPause: (pause: RateLimitPause) => opts.onPause?.(sync.name, pause) } : {}),
      outcomes: new OutcomeLedger({
        store,
        state: sides.state,
        ...(opts.onResults ? { onResults: (results: readonly OperationResult[], cycleId: string) => opts.onResults?.(sync.name, cycleId, results) } : {}),
      }),
    };
    const cycleDeps: CycleDeps = {
      ...(opts.onResults ? { onResult: (result: OperationResult, cycleId: string) => opts.onResults?.(sync.name, cycleId, [result]) } : {}),
      sides,
      store,
      operations: queues.operations,
      options: this.options,
      log,
      ...(opts.onReport ? { onReport: opts.onReport } : {}),
      ...(opts.onPlanned ? { onPlanned: (cycleId: string, plan: Plan) => opts.onPlanned?.(sync.name, cycleId, plan) } : {}),
      ...(opts.onGroupsPlanned ? { onGroupsPlanned: (cycleId: string, plan: GroupPlan) => opts.onGroupsPlanned?.(sync.name, cycleId, plan) } : {}),
      health,
      approvals,
      fastLane,
      approved: () => approvals.deactivations(),
      approvedGroupDeletions: () => approvals.groupDeletions(),
    };
    const common = {
      prefix: queuePrefix(prefix, sync.name),
      lockDuration: this.options.lockDurationMs,
      stalledInterval: this.options.stalledIntervalMs,
      ...queueTelemetry(),
    };
    const names = queueNames(sync.name);

    const cyclePulse = new WorkerPulse();
    const cycleWorker = new Worker<CycleJobData, CycleReport | undefined>(
      names.cycles,
      cyclePulse.wrap((job: Job<CycleJobData>, token?: string, signal?: AbortSignal) => {
        annotateActiveSpan({ 'tvsync.sync': sync.name, 'tvsync.cycle': cycleIdOf(job), 'tvsync.trigger': job.data.trigger });
        return processCycle(job, cycleDeps, token, signal);
      }),
      {
        ...common,
        connection: this.workerConnection(),
        concurrency: 1,
        // A cycle whose replica died is resumed elsewhere from its stored plan; a few stalls are expected in a rollout.
        maxStalledCount: 5,
      },
    );
    const userSyncDeps = {
      sides: workerSides,
      fastLane,
      approvals,
      log,
      hooks: fastLaneHooks,
      ...(opts.onResults
        ? { onResult: (result: OperationResult, runId: string, via?: FastLaneOrigin) => opts.onResults?.(sync.name, runId, [result], via) }
        : {}),
    };
    const operationPulse = new WorkerPulse();
    const operationWorker = new Worker<OperationJobData | UserSyncJobData, OperationResult | UserSyncReport | undefined>(
      names.operations,
      // User syncs share the operation workers, so the fast lane spends the same rate limit as cycles.
      operationPulse.wrap(
        (job: Job, token?: string, signal?: AbortSignal): Promise<OperationResult | UserSyncReport | undefined> =>
          job.name === USER_SYNC_JOB
            ? processUserSyncJob(job as Job<UserSyncJobData>, token, { ...userSyncDeps, ...(signal ? { signal } : {}) })
            : isBatchJob(job.data)
              ? processOperationBatch(job as Job<OperationBatchJobData>, operationDeps, token, signal).then(() => undefined)
              : // The outcome is in the cycle's results: BullMQ need not keep a copy in its event stream.
                processOperation(job as Job<OperationJobData>, operationDeps).then(() => undefined),
      ),
      {
        ...common,
        connection: this.workerConnection(),
        // More jobs open than requests in flight: one job's Redis bookkeeping overlaps another's request.
        concurrency: sync.target.concurrency * OPEN_JOBS_PER_REQUEST,
        // Set again by the governor whenever the learned rate changes; BullMQ reads it at each fetch.
        limiter: governor.limiter(),
        maxStalledCount: 3,
        // 429 answers re-run a job without spending an attempt; this bounds how long that may go on.
        maxStartedAttempts: this.options.opAttempts + 200,
      },
    );
    governor.attach(operationWorker);
    operationWorker.on('closed', () => governor.stop());
    operationWorker.on('failed', (job, err) => {
      // A job that ended without recording an outcome (stalled too often, started too often) is recorded here.
      if (!job || job.name === USER_SYNC_JOB) return;
      void recordLostOperations(store, job as Job<OperationJobData | OperationBatchJobData>, err).catch((e: unknown) =>
        log.error({ err: e }, 'could not record a lost operation'),
      );
    });
    cycleWorker.on('failed', (job, err) => {
      // A cycle that died outside its own error handling (stalled too often, Redis lost mid-report)
      // still ends in a report, so `sync-now --wait` and `run --once` do not wait for ever.
      if (!job) return;
      void recordFailedCycle(store, job, err).catch((e: unknown) => log.error({ err: e }, 'could not record a failed cycle'));
    });
    const workers: Worker[] = [cycleWorker, operationWorker];
    this.livenessMonitor.addWorker(sync.name, 'cycles', cycleWorker, cyclePulse, true);
    this.livenessMonitor.addWorker(sync.name, 'operations', operationWorker, operationPulse, true);
    if (feed) {
      const pollPulse = new WorkerPulse();
      const pollWorker = new Worker(
        names.changes,
        pollPulse.wrap((_job: Job, _token?: string, signal?: AbortSignal) =>
          pollFeed(feed, {
            operations: queues.operations,
            cycles: queues.cycles,
            sync: sync.name,
            log,
            fastLane,
            hooks: fastLaneHooks,
            ...(signal ? { signal } : {}),
          }),
        ),
        { ...common, connection: this.workerConnection(), concurrency: 1, autorun: !opts.deferFeeds },
      );
      workers.push(pollWorker);
      this.feedWorkers.push(pollWorker);
      this.feedWatches.push(this.livenessMonitor.addWorker(sync.name, 'changes', pollWorker, pollPulse, !opts.deferFeeds));
      this.cycleWorkers.push(pollWorker);
    }
    for (const worker of workers) {
      worker.on('error', (err) => this.outage.error(err, 'worker'));
      this.workers.push(worker);
    }
    this.cycleWorkers.push(cycleWorker);
  }

  /**
   * One connection for the non-blocking commands of every worker of the process: per sync only the
   * workers' blocking connections remain (see README, "Many syncs in one deployment").
   */
  private workerConnection(): Redis {
    if (!this.sharedWorkerConnection) {
      this.sharedWorkerConnection = connectRedis(this.config.redis, 'worker', this.outage);
      // Every worker listens to it: hundreds of syncs are expected, not a leak.
      this.sharedWorkerConnection.setMaxListeners(0);
      this.connections.push(this.sharedWorkerConnection);
    }
    return this.sharedWorkerConnection;
  }

  /**
   * BullMQ defines its scripts on the connection its queues use, and ioredis copies every defined
   * script into each pipeline made on that connection (auto-pipelining makes one per tick): the
   * stores' per-operation writes stay cheap on a connection without them.
   */
  private queueConnection(): Redis {
    if (!this.queueRedis) {
      this.queueRedis = connectRedis(this.config.redis, 'producer', this.outage);
      this.connections.push(this.queueRedis);
    }
    return this.queueRedis;
  }

  /** Starts the change-feed workers a `deferFeeds` start left stopped. */
  startFeeds(): void {
    for (const watch of this.feedWatches) watch.expected = true;
    for (const worker of this.feedWorkers) {
      if (worker.isRunning()) continue;
      worker.run().catch((err: unknown) => this.outage.error(err, 'worker'));
    }
  }

  /**
   * Liveness (/healthz): whether a due cycle was left unstarted or a worker of this process stopped
   * taking jobs (runtime/liveness.ts). A process that is stopping is live: it ends by itself.
   */
  async live(nowMs: number = Date.now()): Promise<LivenessVerdict> {
    if (this.stopping) return { live: true, problems: [] };
    return this.livenessMonitor.judge(nowMs);
  }

  /** The workers this process runs, as liveness watches them. */
  get watchedWorkers(): readonly WatchedWorker[] {
    return this.livenessMonitor.workers;
  }

  /** A pushed change for a sync (`/hooks/{sync}/{name}`): 404 when that sync has no such receiver. */
  async receiveHook(syncName: string, name: string, req: HookRequest): Promise<HookAnswer> {
    const runtime = this.syncs.get(syncName);
    if (!runtime?.sync.fastLane.enabled) return { status: 404, body: 'no such hook' };
    runtime.hookReceiver ??= Promise.resolve(runtime.sides.source.hookReceiver?.()).catch(() => {
      // A source that cannot be set up now may be later: not kept.
      runtime.hookReceiver = undefined;
      return undefined;
    });
    const receiver = await runtime.hookReceiver;
    if (!receiver || receiver.name !== name) return { status: 404, body: 'no such hook' };
    return receiveHook(receiver, req, {
      operations: runtime.queues.operations,
      cycles: runtime.queues.cycles,
      sync: syncName,
      log: this.log.child({ sync: syncName }),
      hooks: runtime.fastLaneHooks,
    });
  }

  runtime(sync: string): SyncRuntime {
    const runtime = this.syncs.get(sync);
    if (!runtime) throw new Error(`sync ${sync} is not running in this process`);
    return runtime;
  }

  /**
   * Stops taking jobs, lets running operations finish within the grace time, then hands the rest
   * back (an operation becomes stalled and is picked up again). A cycle that only waits for its
   * operations has nothing to finish: it moves itself back to the queue at once.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      clearInterval(this.stateTimer);
      clearInterval(this.presenceTimer);
      // Bounded: with Redis down, the entries expire on their own.
      await withTimeout(Promise.all(this.presences.map((p) => p.leave())), 1000, () => new Error('presence not cleared')).catch(() => undefined);
      for (const worker of this.cycleWorkers) worker.cancelAllJobs('shutdown');
      const closing = Promise.all(this.workers.map((w) => w.close()));
      // Unref'd: a timer left over from the race must not keep the process alive once all is closed.
      const graceful = await Promise.race([closing.then(() => true), sleep(this.options.shutdownGraceMs, undefined, { ref: false }).then(() => false)]);
      if (!graceful) {
        this.log.warn('running jobs did not finish in time; handing them back');
        for (const worker of this.workers) worker.cancelAllJobs('shutdown');
        await Promise.race([closing, sleep(2000, undefined, { ref: false })]);
        // Bounded: a worker stuck on a dead blocking connection (what liveness restarts) never finishes closing.
        await withTimeout(Promise.all(this.workers.map((w) => w.close(true))), 2000, () => new Error('workers did not close')).catch(() =>
          this.log.warn('a worker did not close; leaving it behind'),
        );
      }
      await withTimeout(Promise.all([...this.syncs.values()].map((s) => closeQueues(s.queues))), 2000, () => new Error('queues did not close')).catch(
        () => undefined,
      );
      // Bounded: a Redis that is down or stalled would hold QUIT for ever.
      await Promise.all(this.connections.map((c) => closeRedis(c)));
      await closeRedis(this.redis);
      await this.tracing?.shutdown().catch(() => undefined);
    })();
    return this.stopping;
  }
}

async function recordLostOperations(store: CycleStore, job: Job<OperationJobData | OperationBatchJobData>, err: Error): Promise<void> {
  const attemptsLeft = job.attemptsMade < (job.opts.attempts ?? 1);
  if (attemptsLeft && !/stalled more than|started more than|UnrecoverableError/i.test(`${err.name} ${err.message}`)) return;
  const { cycleId } = job.data;
  const operations = isBatchJob(job.data) ? job.data.batch : [job.data];
  for (const { key, op } of operations) {
    const [, done] = await store.stoppedOrDone(cycleId, key);
    if (done) continue;
    const who =
      'sourceGroupId' in op
        ? {
            sourceId: op.sourceGroupId,
            group: 'displayName' in op ? op.displayName : op.tvGroupId,
            sourceGroupId: op.sourceGroupId,
            ...('tvGroupId' in op ? { tvGroupId: op.tvGroupId } : {}),
          }
        : { sourceId: op.sourceId, email: op.email };
    await store.recordResult(cycleId, {
      key,
      kind: op.kind,
      ...who,
      after: {},
      status: 'failed',
      failureClass: 'transient',
      message: `${op.kind}: the job failed without an outcome: ${err.message}`,
      attempts: job.attemptsMade,
    });
  }
}

async function recordFailedCycle(store: CycleStore, job: Job<CycleJobData>, err: Error): Promise<void> {
  const cycleId = cycleIdOf(job);
  if (await store.report(cycleId)) return;
  const stored = await store.load(cycleId);
  const startedAtMs = stored?.startedAtMs || job.timestamp;
  await store.stop(cycleId, `the cycle failed: ${err.message}`);
  const results = await store.results(cycleId);
  const report = buildReport({
    sync: store.sync,
    cycleId,
    trigger: job.data.trigger,
    ...(job.data.requestedAt !== undefined ? { requestedAt: job.data.requestedAt } : {}),
    startedAtMs,
    finishedAtMs: Date.now(),
    ...(stored?.plan ? { plan: stored.plan } : {}),
    results,
    failure: { failureClass: 'internal', message: `the cycle job failed: ${err.message}` },
  });
  await store.finish(cycleId, report, results);
}
