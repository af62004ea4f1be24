import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { TvsyncConfig } from '../config/schema.js';
import { startHttpServer, type HttpServerHandle, type Readiness } from '../observe/http.js';
import { bullmqQueueDepth, TvsyncMetrics } from '../observe/metrics.js';
import { ProvisioningLog } from '../observe/provisioning-log.js';
import type { Daemon, DaemonOptions } from './daemon.js';
import { isQuarantined } from './health.js';
import { requestCycle } from './trigger.js';

type Hooks = Pick<DaemonOptions, 'onReport' | 'onResult' | 'onResponse' | 'onPlanned' | 'onPause'>;

/**
 * What a running tvsync reports about itself: Prometheus metrics, the provisioning log (every
 * operation and skip, per sync) and, once the daemon runs, the operations HTTP endpoint.
 */
export class Observability {
  readonly metrics = new TvsyncMetrics();
  private readonly logs = new Map<string, ProvisioningLog>();
  private http?: HttpServerHandle;

  constructor(
    private readonly config: TvsyncConfig,
    private readonly redis: Redis,
    private readonly log: Logger,
  ) {
    this.metrics.initSyncs(config.syncs.map((s) => s.name));
  }

  provisioningLog(sync: string): ProvisioningLog {
    let log = this.logs.get(sync);
    if (!log) {
      log = new ProvisioningLog(this.redis, this.config.redis.prefix, sync);
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
      onResult: (sync, cycleId, result) =>
        safely('an operation', async () => {
          this.metrics.operationRecorded(sync, result);
          await this.provisioningLog(sync).recordResult(cycleId, result);
        }),
      onPlanned: (sync, cycleId, plan) => safely('the skipped users', () => this.provisioningLog(sync).recordSkipped(cycleId, plan.skipped)),
      onReport: (report) =>
        safely('a cycle', async () => {
          this.metrics.cycleFinished(report);
          if (report.groups?.skipped.length) await this.provisioningLog(report.sync).recordGroupSkipped(report.cycleId, report.groups.skipped);
        }),
    };
  }

  /** Ready when Redis answers and no sync is quarantined or was refused by TeamViewer. */
  async readiness(daemon: Daemon): Promise<Readiness> {
    const checks: Readiness['checks'] = [];
    try {
      await daemon.redis.ping();
      checks.push({ name: 'redis', ok: true, detail: 'Redis answers' });
    } catch (err) {
      checks.push({ name: 'redis', ok: false, detail: `Redis does not answer: ${err instanceof Error ? err.message : String(err)}` });
    }
    for (const [name, runtime] of daemon.syncs) {
      try {
        const health = await runtime.health.load();
        const quarantined = isQuarantined(health, Date.now());
        this.metrics.setQuarantined(name, quarantined);
        if (quarantined) checks.push({ name: `sync ${name}`, ok: false, detail: `quarantined until ${new Date(health.quarantinedUntil ?? 0).toISOString()}: ${health.reason ?? ''}` });
        else if (health.lastFailureClass === 'unauthorised') checks.push({ name: `sync ${name}`, ok: false, detail: 'the last cycle failed: TeamViewer refused the token' });
        else checks.push({ name: `sync ${name}`, ok: true, detail: health.lastOutcome ? `last cycle ${health.lastOutcome}` : 'no cycle yet' });
      } catch (err) {
        checks.push({ name: `sync ${name}`, ok: false, detail: `health unknown: ${err instanceof Error ? err.message : String(err)}` });
      }
    }
    return { ready: checks.every((c) => c.ok), checks };
  }

  async serve(daemon: Daemon): Promise<HttpServerHandle> {
    this.metrics.registerQueueDepth(bullmqQueueDepth(daemon.syncs));
    this.http = await startHttpServer({
      host: this.config.http.host,
      port: this.config.http.port,
      log: this.log,
      metrics: this.metrics,
      ready: () => this.readiness(daemon),
      syncNames: [...daemon.syncs.keys()],
      ...(this.config.http.triggerToken ? { triggerToken: this.config.http.triggerToken } : {}),
      triggerSyncNow: (sync) => requestCycle(daemon.runtime(sync).queues.cycles, sync),
    });
    return this.http;
  }

  async close(): Promise<void> {
    await this.http?.close();
  }
}
