import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { CycleReport, OperationResult } from '../plan/report.js';
import type { ResponseInfo } from '../net/response-info.js';
import { DRIFT_KINDS, NOT_KEPT_KINDS } from '../plan/drift.js';

/** Jobs of one queue in one state, as the runtime counts them at scrape time. */
export interface QueueDepthSample {
  sync: string;
  queue: string;
  state: string;
  count: number;
}

export type QueueDepthCollector = () => Promise<QueueDepthSample[]>;

export interface TvsyncMetricsOptions {
  /** Process and Node.js metrics (CPU, memory, event loop lag, GC) under their usual names. */
  defaultMetrics?: boolean;
  /** A scrape never waits longer than this for the queue depth (Redis may be unreachable). */
  queueCollectTimeoutMs?: number;
}

const CYCLE_OUTCOMES: readonly CycleReport['outcome'][] = ['succeeded', 'partial', 'failed'];

/** Job states worth watching: work waiting or running, and jobs that gave up. */
export const QUEUE_STATES = ['waiting', 'prioritized', 'delayed', 'active', 'waiting-children', 'failed'] as const;

/**
 * The daemon's Prometheus metrics, on a registry of their own so that tests and embedders never
 * share prom-client's global registry.
 */
export class TvsyncMetrics {
  readonly registry = new Registry();
  readonly contentType: string;

  private readonly cycles: Counter<'sync' | 'outcome'>;
  private readonly cycleDuration: Histogram<'sync'>;
  private readonly inScope: Gauge<'sync'>;
  private readonly skipped: Gauge<'sync' | 'reason'>;
  private readonly held: Gauge<'sync'>;
  private readonly seats: Gauge<'sync' | 'state'>;
  private readonly ssoUsers: Gauge<'sync' | 'status'>;
  private readonly ssoStatuses = new Map<string, Set<string>>();
  private readonly lastSuccess: Gauge<'sync'>;
  private readonly operations: Counter<'sync' | 'kind' | 'outcome'>;
  private readonly operationFailures: Counter<'sync' | 'kind' | 'failure_class'>;
  private readonly tvRequests: Counter<'sync' | 'method' | 'route' | 'status'>;
  private readonly tvDuration: Histogram<'sync' | 'method' | 'route'>;
  private readonly tvRateLimited: Counter<'sync'>;
  private readonly quarantined: Gauge<'sync'>;
  private readonly pausedUntil: Gauge<'sync'>;
  private readonly requestRateGauge: Gauge<'sync'>;
  private readonly pauseCapped: Counter<'sync'>;
  private readonly queueCollectErrors: Counter;
  private readonly changes: Counter<'sync' | 'feed'>;
  private readonly userSyncs: Counter<'sync' | 'trigger' | 'outcome'>;
  private readonly detectionLag: Histogram<'sync' | 'feed'>;
  private readonly fastLaneLatency: Histogram<'sync' | 'trigger'>;
  private readonly feedPolls: Counter<'sync' | 'feed' | 'outcome'>;
  private readonly feedRequests: Counter<'sync' | 'feed'>;
  private readonly writesNotKept: Counter<'sync' | 'kind'>;
  private readonly drift: Counter<'sync' | 'kind'>;
  /** Skip reasons last reported per sync, so reasons that went away can be set back to 0. */
  private readonly skipReasons = new Map<string, Set<string>>();
  private queueCollector?: QueueDepthCollector;
  /** The queue depth read of the scrape under way (it never rejects). */
  private queueCollecting: Promise<void> = Promise.resolve();
  private readonly queueCollectTimeoutMs: number;

  constructor(opts: TvsyncMetricsOptions = {}) {
    const registers = [this.registry];
    this.contentType = this.registry.contentType;
    this.queueCollectTimeoutMs = opts.queueCollectTimeoutMs ?? 2000;
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });

    this.cycles = new Counter({ name: 'tvsync_cycles_total', help: 'Finished sync cycles by outcome', labelNames: ['sync', 'outcome'], registers });
    this.cycleDuration = new Histogram({
      name: 'tvsync_cycle_duration_seconds',
      help: 'Wall time of a sync cycle, from start to report',
      labelNames: ['sync'],
      // Small tenants finish in seconds; a first sync of 100k users under rate limits takes hours.
      buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800],
      registers,
    });
    this.inScope = new Gauge({ name: 'tvsync_users_in_scope', help: 'IdP users in the sync scope at the last planned cycle', labelNames: ['sync'], registers });
    this.skipped = new Gauge({ name: 'tvsync_skipped', help: 'Users skipped by the last planned cycle, by reason', labelNames: ['sync', 'reason'], registers });
    this.held = new Gauge({
      name: 'tvsync_held_deactivations',
      help: 'Deactivations held for approval by the last planned cycle',
      labelNames: ['sync'],
      registers,
    });
    this.seats = new Gauge({
      name: 'tvsync_seats',
      help: 'Seats of the company licence at the last planned cycle (seats.enabled): used, free, total',
      labelNames: ['sync', 'state'],
      registers,
    });
    this.ssoUsers = new Gauge({
      name: 'tvsync_sso_users',
      help: 'Active users whose SSO status is not Active at the last planned cycle, by status (sso.report)',
      labelNames: ['sync', 'status'],
      registers,
    });
    this.lastSuccess = new Gauge({
      name: 'tvsync_last_successful_cycle_timestamp_seconds',
      help: 'End of the last cycle that succeeded or partly succeeded (Unix time)',
      labelNames: ['sync'],
      registers,
    });
    this.operations = new Counter({
      name: 'tvsync_operations_total',
      help: 'User and group operations by kind and outcome',
      labelNames: ['sync', 'kind', 'outcome'],
      registers,
    });
    this.operationFailures = new Counter({
      name: 'tvsync_operation_failures_total',
      help: 'Failed operations by failure class',
      labelNames: ['sync', 'kind', 'failure_class'],
      registers,
    });
    this.tvRequests = new Counter({
      name: 'tvsync_teamviewer_requests_total',
      help: 'Answers received from TeamViewer',
      labelNames: ['sync', 'method', 'route', 'status'],
      registers,
    });
    this.tvDuration = new Histogram({
      name: 'tvsync_teamviewer_request_duration_seconds',
      help: 'Time until TeamViewer answered',
      labelNames: ['sync', 'method', 'route'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.tvRateLimited = new Counter({
      name: 'tvsync_teamviewer_rate_limited_total',
      help: 'TeamViewer answers with status 429',
      labelNames: ['sync'],
      registers,
    });
    this.pausedUntil = new Gauge({
      name: 'tvsync_rate_limit_paused_until_timestamp_seconds',
      help: "End of the last pause TeamViewer's rate limit imposed on the sync's operations (Unix time)",
      labelNames: ['sync'],
      registers,
    });
    this.requestRateGauge = new Gauge({
      name: 'tvsync_request_rate',
      help: "Requests per second the sync's operations may send TeamViewer, as learned from its answers (429s, latency)",
      labelNames: ['sync'],
      registers,
    });
    this.pauseCapped = new Counter({
      name: 'tvsync_rate_limit_pause_capped_total',
      help: 'Pauses TeamViewer asked for that were longer than runtime.maxRetryAfter and were capped',
      labelNames: ['sync'],
      registers,
    });
    this.quarantined = new Gauge({
      name: 'tvsync_sync_quarantined',
      help: '1 while a sync is quarantined (e.g. its token was rejected)',
      labelNames: ['sync'],
      registers,
    });
    const queueJobs: Gauge<'sync' | 'queue' | 'state'> = new Gauge({
      name: 'tvsync_queue_jobs',
      help: 'Jobs in the BullMQ queues by state, read at scrape time',
      labelNames: ['sync', 'queue', 'state'],
      registers,
      collect: () => (this.queueCollecting = this.collectQueueDepth(queueJobs)),
    });
    // Registered after the gauge and waiting for its collection, so a scrape counts its own failure.
    this.changes = new Counter({
      name: 'tvsync_fast_lane_changes_total',
      help: 'Changes the IdP feeds and hooks named (each asks for a user sync or a cycle), by feed',
      labelNames: ['sync', 'feed'],
      registers,
    });
    this.userSyncs = new Counter({
      name: 'tvsync_user_syncs_total',
      help: 'Finished user syncs (fast lane and on demand) by trigger and outcome',
      labelNames: ['sync', 'trigger', 'outcome'],
      registers,
    });
    this.detectionLag = new Histogram({
      name: 'tvsync_fast_lane_detection_lag_seconds',
      help: 'From the change in the IdP (its own timestamp) to tvsync noticing it',
      labelNames: ['sync', 'feed'],
      buckets: [0.5, 1, 2, 5, 10, 15, 20, 30, 45, 60, 120, 300],
      registers,
    });
    this.fastLaneLatency = new Histogram({
      name: 'tvsync_fast_lane_latency_seconds',
      help: 'From the change in the IdP to the TeamViewer write that applied it',
      labelNames: ['sync', 'trigger'],
      buckets: [0.5, 1, 2, 5, 10, 15, 20, 30, 45, 60, 120, 300],
      registers,
    });
    this.feedPolls = new Counter({
      name: 'tvsync_fast_lane_polls_total',
      help: 'Polls of the change feeds by outcome',
      labelNames: ['sync', 'feed', 'outcome'],
      registers,
    });
    this.feedRequests = new Counter({
      name: 'tvsync_fast_lane_idp_requests_total',
      help: 'IdP requests the change feeds sent (what the fast lane costs when nothing changes)',
      labelNames: ['sync', 'feed'],
      registers,
    });
    this.writesNotKept = new Counter({
      name: 'tvsync_writes_not_kept_total',
      help: 'Writes TeamViewer answered with success but the next read did not show (objects, or members), by kind',
      labelNames: ['sync', 'kind'],
      registers,
    });
    this.drift = new Counter({
      name: 'tvsync_drift_total',
      help: 'Changes made by hand in TeamViewer against what tvsync left, seen before being set back (objects, or members), by kind',
      labelNames: ['sync', 'kind'],
      registers,
    });
    this.queueCollectErrors = new Counter({
      name: 'tvsync_queue_collect_errors_total',
      help: 'Scrapes whose queue depth could not be read in time',
      registers,
      collect: () => this.queueCollecting,
    });
  }

  /**
   * Creates the per-sync series at 0 so that rate() and absent() work from the first scrape,
   * before a sync has finished a cycle or met a 429.
   */
  initSyncs(names: readonly string[]): void {
    for (const sync of names) {
      for (const outcome of CYCLE_OUTCOMES) this.cycles.inc({ sync, outcome }, 0);
      this.tvRateLimited.inc({ sync }, 0);
      this.quarantined.set({ sync }, 0);
      this.pausedUntil.set({ sync }, 0);
      this.pauseCapped.inc({ sync }, 0);
      for (const kind of NOT_KEPT_KINDS) this.writesNotKept.inc({ sync, kind }, 0);
      for (const kind of DRIFT_KINDS) this.drift.inc({ sync, kind }, 0);
    }
  }

  requestRate(sync: string, rate: number): void {
    this.requestRateGauge.set({ sync }, Math.round(rate * 10) / 10);
  }

  rateLimitPause(sync: string, pause: { untilMs: number; askedMs: number; appliedMs: number }): void {
    this.pausedUntil.set({ sync }, pause.untilMs / 1000);
    if (pause.askedMs > pause.appliedMs) this.pauseCapped.inc({ sync });
  }

  cycleFinished(report: CycleReport): void {
    const { sync } = report;
    this.cycles.inc({ sync, outcome: report.outcome });
    this.cycleDuration.observe({ sync }, Math.max(0, report.durationMs) / 1000);
    if (report.outcome === 'succeeded' || report.outcome === 'partial') {
      const finished = Date.parse(report.finishedAt);
      this.lastSuccess.set({ sync }, (Number.isFinite(finished) ? finished : Date.now()) / 1000);
    }
    for (const [kind, n] of Object.entries(report.writesNotKept?.byKind ?? {})) if (n) this.writesNotKept.inc({ sync, kind }, n);
    for (const [kind, n] of Object.entries(report.drift?.byKind ?? {})) if (n) this.drift.inc({ sync, kind }, n);
    // A cycle that failed before planning says nothing about the scope: the last plan's values stay.
    if (!report.summary) return;
    this.inScope.set({ sync }, report.summary.inScope);
    this.held.set({ sync }, report.held.count);
    const previous = this.skipReasons.get(sync) ?? new Set<string>();
    const current = new Set<string>();
    for (const [reason, count] of Object.entries(report.summary.skipped)) {
      if (count === undefined) continue;
      this.skipped.set({ sync, reason }, count);
      current.add(reason);
    }
    // 0 rather than removing the series: an alert on "skipped > 0" then resolves instead of going stale.
    for (const reason of previous) if (!current.has(reason)) this.skipped.set({ sync, reason }, 0);
    this.skipReasons.set(sync, new Set([...previous, ...current]));
    if (report.seats) for (const state of ['used', 'free', 'total'] as const) this.seats.set({ sync, state }, report.seats[state]);
    if (report.sso?.status === 'checked') {
      const before = this.ssoStatuses.get(sync) ?? new Set<string>();
      const now = new Set<string>();
      for (const [status, count] of Object.entries(report.sso.notActive)) {
        if (count === undefined) continue;
        this.ssoUsers.set({ sync, status }, count);
        now.add(status);
      }
      // As with the skip reasons: a status that cleared goes to 0, so an alert resolves.
      for (const status of before) if (!now.has(status)) this.ssoUsers.set({ sync, status }, 0);
      this.ssoStatuses.set(sync, new Set([...before, ...now]));
    }
  }

  changesSeen(sync: string, feed: string, hints: readonly { atMs: number }[], detectedAtMs: number): void {
    this.changes.inc({ sync, feed }, hints.length);
    for (const hint of hints) this.detectionLag.observe({ sync, feed }, Math.max(0, detectedAtMs - hint.atMs) / 1000);
  }

  userSyncFinished(sync: string, report: { trigger: string; outcome: string; latencyMs?: number }): void {
    this.userSyncs.inc({ sync, trigger: report.trigger, outcome: report.outcome });
    if (report.latencyMs !== undefined) this.fastLaneLatency.observe({ sync, trigger: report.trigger }, report.latencyMs / 1000);
  }

  feedPolled(sync: string, status: { feed: string; ok: boolean; requests: number }): void {
    this.feedPolls.inc({ sync, feed: status.feed, outcome: status.ok ? 'ok' : 'failed' });
    this.feedRequests.inc({ sync, feed: status.feed }, status.requests);
  }

  /** Outcomes written together: each counter moves once per kind and outcome, not once per operation. */
  operationsRecorded(sync: string, results: readonly OperationResult[]): void {
    const outcomes = new Map<string, { kind: string; outcome: string; n: number }>();
    const failures = new Map<string, { kind: string; failureClass: string; n: number }>();
    for (const { kind, status, failureClass = 'unknown' } of results) {
      const seen = outcomes.get(`${kind}\0${status}`);
      if (seen) seen.n++;
      else outcomes.set(`${kind}\0${status}`, { kind, outcome: status, n: 1 });
      if (status !== 'failed') continue;
      const failed = failures.get(`${kind}\0${failureClass}`);
      if (failed) failed.n++;
      else failures.set(`${kind}\0${failureClass}`, { kind, failureClass, n: 1 });
    }
    for (const { kind, outcome, n } of outcomes.values()) this.operations.inc({ sync, kind, outcome }, n);
    for (const { kind, failureClass, n } of failures.values()) this.operationFailures.inc({ sync, kind, failure_class: failureClass }, n);
  }

  teamviewerResponse(sync: string, info: ResponseInfo): void {
    const method = info.method.toUpperCase();
    const route = routeLabel(info.path);
    this.tvRequests.inc({ sync, method, route, status: String(info.status) });
    this.tvDuration.observe({ sync, method, route }, Math.max(0, info.ms) / 1000);
    if (info.status === 429) this.tvRateLimited.inc({ sync });
  }

  setQuarantined(sync: string, quarantined: boolean): void {
    this.quarantined.set({ sync }, quarantined ? 1 : 0);
  }

  /** The source of tvsync_queue_jobs, called at every scrape; a later call replaces an earlier one. */
  registerQueueDepth(collect: QueueDepthCollector): void {
    this.queueCollector = collect;
  }

  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  private async collectQueueDepth(gauge: Gauge<'sync' | 'queue' | 'state'>): Promise<void> {
    // Stale counts would look like a stuck queue: without a fresh answer the series disappear.
    gauge.reset();
    const collect = this.queueCollector;
    if (!collect) return;
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('queue depth timed out')), this.queueCollectTimeoutMs);
      });
      const samples = await Promise.race([collect(), timeout]);
      for (const s of samples) gauge.set({ sync: s.sync, queue: s.queue, state: s.state }, s.count);
    } catch {
      // One unreachable Redis must not fail the whole scrape; the error counter tells the story.
      this.queueCollectErrors.inc();
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Routes come as templates (/Users/{id}); the query is cut off in case one slips through. */
function routeLabel(path: string): string {
  const cut = path.search(/[?#]/);
  return cut === -1 ? path : path.slice(0, cut);
}
