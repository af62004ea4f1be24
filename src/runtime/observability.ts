import type { Redis } from 'ioredis';
import { Counter } from 'prom-client';
import type { Logger } from 'pino';
import type { TvsyncConfig } from '../config/schema.js';
import { READY_REASONS, startHttpServer, type HttpServerHandle, type Readiness, type ReadyReason } from '../observe/http.js';
import { QUEUE_STATES, TvsyncMetrics, type QueueDepthCollector } from '../observe/metrics.js';
import { ProvisioningLog } from '../observe/provisioning-log.js';
import type { Daemon, DaemonOptions } from './daemon.js';
import { isQuarantined } from './health.js';
import type { SyncHealth } from '../store/health.js';
import { syncKeys } from '../store/keys.js';
import { withTimeout } from './redis.js';
import type { SyncQueues } from './queues.js';
import { requestCycle } from './trigger.js';
import { requestUserSync } from './fast-lane.js';
import { inSpan } from '../observe/traces.js';
import { readStatus } from './status.js';
import { approveCycle, approveFastLane } from './approve.js';
import type { StatusPageSource } from '../observe/status-page-http.js';
import { PAGE_REPORTS } from '../observe/status-page.js';
import { Alerter } from './alerts.js';
import { AuditStream, FileAuditSink, StdoutAuditSink, SyslogAuditSink, type AuditSink } from '../observe/audit.js';
import type { AuditConfig } from '../config/operators.js';

/** How long queued alerts get to go out when the process stops. */
const ALERT_CLOSE_GRACE_MS = 5000;

/** How the audit stream names each source system. */
const SOURCE_SYSTEMS: Record<string, string> = { entra: 'Microsoft Entra ID', okta: 'Okta', jumpcloud: 'JumpCloud', file: 'File export' };

/** The configured audit sink, or none (audit.to: off). */
export function openAuditSink(config: AuditConfig, log: Logger): AuditSink | undefined {
  if (config.to === 'stdout') return new StdoutAuditSink();
  if (config.to === 'file' && config.path) return new FileAuditSink(config.path, log, config.maxBytes);
  if (config.to === 'syslog')
    return new SyslogAuditSink(config.syslog ?? { host: '127.0.0.1', port: 514, protocol: 'udp', facility: 13, appName: 'tvsync' }, log);
  return undefined;
}

/** How long POST /syncs/{name}/users/{id}/sync waits for the report before answering 202. */
const USER_SYNC_HTTP_WAIT_MS = 25_000;

/** Each readiness check gets this long; /readyz as a whole answers within two seconds. */
const CHECK_TIMEOUT_MS = 1000;

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

type Hooks = Pick<
  DaemonOptions,
  'onReport' | 'onResults' | 'onResponse' | 'onPlanned' | 'onGroupsPlanned' | 'onPause' | 'onUserSync' | 'onHints' | 'onPoll' | 'onRequestRate'
>;

/**
 * What a running tvsync reports about itself: Prometheus metrics, the provisioning log (every
 * operation and skip, per sync) and, once the daemon runs, the operations HTTP endpoint.
 */
export class Observability {
  readonly metrics = new TvsyncMetrics();
  private readonly logs = new Map<string, ProvisioningLog>();
  private http?: HttpServerHandle;
  /** Webhook alerts, when any webhook is configured. */
  readonly alerter?: Alerter;
  /** The provisioning log as JSON lines, when audit.to is not off. */
  readonly audit?: AuditStream;
  private readonly reopenAudit = () => this.audit?.reopen();

  constructor(
    private readonly config: TvsyncConfig,
    private readonly redis: Redis,
    private readonly log: Logger,
    opts: { auditSink?: AuditSink } = {},
  ) {
    this.metrics.initSyncs(config.syncs.map((s) => s.name));
    if (config.alerts.webhooks.length) {
      // Registered here, on the daemon's registry, only when alerts are on.
      const alerts = new Counter({
        name: 'tvsync_alerts_total',
        help: 'Alert messages (alerts and rate-limit digests) per webhook: sent, or given up on after their attempts',
        labelNames: ['webhook', 'outcome'],
        registers: [this.metrics.registry],
      });
      this.alerter = new Alerter(config.alerts, redis, config.redis.prefix, log, { onDelivery: (webhook, outcome) => alerts.inc({ webhook, outcome }) });
    }
    const sink = opts.auditSink ?? openAuditSink(config.audit, log);
    if (sink) this.audit = new AuditStream(sink, log);
  }

  /** Starts looking at the alert conditions of the daemon's syncs, and reopens the audit file on SIGHUP. */
  watch(daemon: Pick<Daemon, 'syncs'>): void {
    this.alerter?.start(daemon.syncs);
    if (this.audit?.reopens) process.on('SIGHUP', this.reopenAudit);
  }

  provisioningLog(sync: string): ProvisioningLog {
    let log = this.logs.get(sync);
    if (!log) {
      const audit = this.audit;
      const type = this.config.syncs.find((s) => s.name === sync)?.source.type ?? '';
      const sourceSystem = SOURCE_SYSTEMS[type] ?? type;
      log = new ProvisioningLog(
        this.redis,
        syncKeys(this.config.redis.prefix, sync).provisioningLog,
        audit ? { onWrite: (entries) => audit.record(sync, sourceSystem, entries) } : {},
      );
      this.logs.set(sync, log);
    }
    return log;
  }

  /** Daemon hooks; a failure to observe is logged, never allowed to fail a cycle or an operation. */
  hooks(): Hooks {
    const safely = (what: string, fn: () => Promise<void> | void) =>
      Promise.resolve()
        .then(fn)
        .catch((err: unknown) => this.log.warn({ err: err instanceof Error ? err.message : String(err) }, `could not record ${what}`));
    return {
      onResponse: (sync, info) => this.metrics.teamviewerResponse(sync, info),
      onPause: (sync, pause) => this.metrics.rateLimitPause(sync, pause),
      onRequestRate: (sync, rate) => this.metrics.requestRate(sync, rate),
      onResults: (sync, cycleId, results, via) =>
        safely(results.length === 1 ? 'an operation' : 'operations', async () => {
          this.metrics.operationsRecorded(sync, results);
          await this.provisioningLog(sync).recordResults(cycleId, results, Date.now(), via);
        }),
      onUserSync: (sync, report) => safely('a user sync', () => this.metrics.userSyncFinished(sync, report)),
      onHints: (sync, feed, hints, detectedAtMs) => this.metrics.changesSeen(sync, feed, hints, detectedAtMs),
      onPoll: (sync, status) => this.metrics.feedPolled(sync, status),
      onPlanned: (sync, cycleId, plan) =>
        safely('the skipped users', async () => {
          await this.provisioningLog(sync).recordSkipped(cycleId, plan.skipped);
          await this.provisioningLog(sync).recordWriteCheck(cycleId, plan.writeCheck);
        }),
      // Every skip, as planned: the report keeps only the first REPORT_LIST_CAP.
      onGroupsPlanned: (sync, cycleId, plan) =>
        safely('the skipped groups', async () => {
          await this.provisioningLog(sync).recordGroupSkipped(cycleId, plan.skipped);
          await this.provisioningLog(sync).recordWriteCheck(cycleId, plan.writeCheck);
        }),
      onReport: (report) =>
        safely('a cycle', () => {
          this.metrics.cycleFinished(report);
          this.alerter?.afterCycle(report);
        }),
    };
  }

  /**
   * Ready when Redis answers with its data intact (or restored) and no sync is quarantined or was
   * refused by TeamViewer. Each check is bounded: a stalled Redis makes it "not ready", not a hang.
   */
  async readiness(daemon: Daemon): Promise<Readiness> {
    const bounded = <T>(promise: Promise<T>) => withTimeout(promise, CHECK_TIMEOUT_MS, () => new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`));
    const syncs = [...daemon.syncs];
    const [ping, lost, ...healths] = await Promise.allSettled([
      bounded(daemon.redis.ping()),
      bounded(daemon.guard.lost()),
      ...syncs.map(([, runtime]) => bounded(runtime.health.load())),
    ]);
    const failed: ReadyReason[] = [];
    const checks: Readiness['checks'] = [];
    const fail = (reason: ReadyReason, check: Omit<Readiness['checks'][number], 'ok'>) => {
      failed.push(reason);
      checks.push({ ...check, ok: false });
    };
    if (ping.status === 'fulfilled') {
      daemon.outage.answered();
      checks.push({ name: 'redis', ok: true, detail: 'Redis answers' });
    } else {
      fail(READY_REASONS.redisDown, { name: 'redis', detail: `Redis does not answer: ${messageOf(ping.reason)}` });
    }
    if (lost.status === 'fulfilled' && lost.value.length > 0) {
      // Restoring also starts here, so a probe never waits for the next periodic look.
      daemon.checkState();
      fail(READY_REASONS.redisLost, {
        name: 'redis data',
        detail: `Redis lost its data (its state marker for ${lost.value.map((s) => `sync ${s}`).join(', ')} is gone or new); restoring the schedule and queue settings`,
      });
    } else if (lost.status === 'fulfilled') {
      checks.push({ name: 'redis data', ok: true, detail: 'the schedule and queue settings are in place' });
    }
    syncs.forEach(([name], i) => {
      const result = healths[i];
      if (!result || result.status === 'rejected') {
        fail(READY_REASONS.healthUnknown, { name: `sync ${name}`, detail: `health unknown: ${messageOf(result?.reason)}` });
        return;
      }
      const health = result.value as SyncHealth;
      const quarantined = isQuarantined(health, Date.now());
      this.metrics.setQuarantined(name, quarantined);
      if (quarantined)
        fail(READY_REASONS.quarantined, {
          name: `sync ${name}`,
          detail: `quarantined until ${new Date(health.quarantinedUntil ?? 0).toISOString()}: ${health.reason ?? ''}`,
        });
      else if (health.lastFailureClass === 'unauthorised')
        fail(READY_REASONS.refused, { name: `sync ${name}`, detail: 'the last cycle failed: TeamViewer refused the token' });
      else checks.push({ name: `sync ${name}`, ok: true, detail: health.lastOutcome ? `last cycle ${health.lastOutcome}` : 'no cycle yet' });
    });
    return { ready: failed.length === 0, reason: failed[0] ?? READY_REASONS.ready, checks };
  }

  async serve(daemon: Daemon): Promise<HttpServerHandle> {
    this.metrics.registerQueueDepth(bullmqQueueDepth(daemon.syncs));
    this.http = await startHttpServer({
      host: this.config.http.host,
      port: this.config.http.port,
      log: this.log,
      metrics: this.metrics,
      ready: () => this.readiness(daemon),
      live: () => daemon.live(),
      syncNames: [...daemon.syncs.keys()],
      ...(this.config.http.triggerToken ? { triggerToken: this.config.http.triggerToken } : {}),
      ...(this.config.http.metricsToken ? { metricsToken: this.config.http.metricsToken } : {}),
      // The press is the root of the cycle's trace: the job carries its context to the worker.
      triggerSyncNow: (sync) => inSpan('sync now', { 'tvsync.sync': sync, 'tvsync.via': 'http' }, () => requestCycle(daemon.runtime(sync).queues.cycles, sync)),
      syncUser: async (sync, ref, opts) => {
        // Queued on the daemon's workers, behind any cycle; a person waiting at the other end gets the report or the job id.
        const { jobId, report } = await requestUserSync(daemon.runtime(sync).queues.operations, ref, { ...opts, waitMs: USER_SYNC_HTTP_WAIT_MS });
        if (!report)
          return {
            status: 202,
            body: { sync, user: ref, queued: true, jobId, detail: `not finished within ${USER_SYNC_HTTP_WAIT_MS / 1000} s; see tvsync status` },
          };
        return { status: report.outcome === 'failed' ? 502 : 200, body: report };
      },
      receiveHook: (sync, name, req) => daemon.receiveHook(sync, name, req),
      ...(this.config.http.statusPage === 'off' ? {} : { statusPage: { mode: this.config.http.statusPage ?? 'open', source: this.statusPageSource(daemon) } }),
    });
    return this.http;
  }

  /** The status page reads and acts through what `tvsync status` and `tvsync approve` use. */
  private statusPageSource(daemon: Daemon): StatusPageSource {
    const prefix = this.config.redis.prefix;
    return {
      syncs: () => Promise.all(this.config.syncs.filter((s) => daemon.syncs.has(s.name)).map((s) => readStatus(this.redis, prefix, s, PAGE_REPORTS))),
      approveCycle: (sync, cycleId) => approveCycle(this.redis, prefix, sync, cycleId),
      approveFastLane: (sync) => approveFastLane(this.redis, prefix, sync),
      searchLog: (sync, query) => this.provisioningLog(sync).query(query),
    };
  }

  async close(): Promise<void> {
    await this.http?.close();
    await this.alerter?.close(ALERT_CLOSE_GRACE_MS);
    process.off('SIGHUP', this.reopenAudit);
    await this.audit?.close();
  }
}

/** A queue depth source for the daemon's running syncs (Daemon.syncs). */
export function bullmqQueueDepth(syncs: ReadonlyMap<string, { queues: SyncQueues }>): QueueDepthCollector {
  return async () => {
    const perSync = await Promise.all(
      [...syncs].map(async ([sync, { queues }]) => {
        const [cycles, operations] = await Promise.all([queues.cycles.getJobCounts(...QUEUE_STATES), queues.operations.getJobCounts(...QUEUE_STATES)]);
        return [
          ...QUEUE_STATES.map((state) => ({ sync, queue: 'cycles', state, count: cycles[state] ?? 0 })),
          ...QUEUE_STATES.map((state) => ({ sync, queue: 'operations', state, count: operations[state] ?? 0 })),
        ];
      }),
    );
    return perSync.flat();
  };
}
