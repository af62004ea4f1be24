import { setTimeout as sleep } from 'node:timers/promises';
import type { KeyPrefix } from '../store/keys.js';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { AlertsConfig } from '../config/operators.js';
import { activeConditions, alertChanges, type Alert, type SyncFacts } from '../observe/alerts.js';
import { WebhookDispatcher } from '../observe/webhooks.js';
import type { CycleReport } from '../plan/report.js';
import { AlertStore } from '../store/alerts.js';
import type { SyncRuntime } from './daemon.js';

/** How long one evaluation of a sync may hold its lock; it takes a few Redis calls. */
const LOCK_MS = 15_000;
/** How long a look waits for another replica's look at the same sync: 50 × 100 ms. */
const LOCK_TRIES = 50;
const LOCK_RETRY_MS = 100;
/** How long the last report read is trusted when no newer cycle recorded its health. */
const REPORT_REFRESH_MS = 5 * 60_000;

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The part of the last report that alerts read, kept per sync until a newer cycle finished. */
interface ReportFacts {
  cycleAt: number;
  readAtMs: number;
  lastCycle?: SyncFacts['lastCycle'];
  held: Omit<SyncFacts['held'], 'fastLaneDeactivations'>;
}

function reportFacts(report: CycleReport | undefined, cycleAt: number): ReportFacts {
  const readAtMs = Date.now();
  if (!report) return { cycleAt, readAtMs, held: { deactivations: 0, groupDeletions: 0, memberRemovals: 0, roleRemovals: 0 } };
  return {
    cycleAt,
    readAtMs,
    lastCycle: {
      cycleId: report.cycleId,
      outcome: report.outcome,
      ...(report.failure ? { failureClass: report.failure.failureClass, message: report.failure.message } : {}),
    },
    held: {
      deactivations: report.held.count,
      groupDeletions: report.groups?.held.count ?? 0,
      memberRemovals: report.groups?.heldMemberRemovals?.count ?? 0,
      roleRemovals: report.roles?.held.count ?? 0,
    },
  };
}

/**
 * Alerts for the syncs a daemon runs: after each cycle and every `checkEvery`, each sync's facts
 * are read from Redis, its conditions worked out, and what changed since the last look sent to the
 * webhooks. What was alerted lives in Redis (store/alerts.ts), so replicas alert once between
 * them; sending is queued (observe/webhooks.ts), so a slow webhook never holds up a cycle.
 */
export class Alerter {
  readonly dispatcher: WebhookDispatcher;
  private readonly reports = new Map<string, ReportFacts>();
  private readonly stores = new Map<string, AlertStore>();
  private readonly running = new Map<string, Promise<Alert[]>>();
  private readonly queued = new Map<string, Promise<Alert[]>>();
  /** Looks asked by finished cycles, awaited on close. */
  private readonly looks = new Set<Promise<unknown>>();
  private timer?: NodeJS.Timeout;
  private syncs: ReadonlyMap<string, SyncRuntime> = new Map();

  constructor(
    private readonly config: AlertsConfig,
    private readonly redis: Redis,
    private readonly prefix: KeyPrefix,
    private readonly log: Logger,
    opts: { onDelivery?: (webhook: string, outcome: 'sent' | 'failed') => void } = {},
  ) {
    this.dispatcher = new WebhookDispatcher(
      config.webhooks,
      {
        timeoutMs: config.timeout,
        attempts: config.attempts,
        rateLimitPerMinute: config.rateLimitPerMinute,
        ...(opts.onDelivery ? { onDelivery: opts.onDelivery } : {}),
      },
      log.child({ component: 'alerts' }),
    );
  }

  get enabled(): boolean {
    return this.dispatcher.enabled;
  }

  /** Looks at every sync of the daemon now and every `checkEvery`. */
  start(syncs: ReadonlyMap<string, SyncRuntime>): void {
    if (!this.enabled) return;
    this.syncs = syncs;
    this.timer = setInterval(() => this.checkAll(), this.config.checkEvery);
    this.timer.unref();
    this.checkAll();
  }

  /** A cycle finished: look at its sync now rather than at the next tick. Never throws, never waits on a webhook. */
  afterCycle(report: CycleReport): void {
    const runtime = this.syncs.get(report.sync);
    if (!runtime) return;
    const look = runtime.health
      .load()
      .then((health) => this.reports.set(report.sync, reportFacts(report, health.lastCycleAt ?? 0)))
      .catch(() => undefined)
      .then(() => this.check(runtime))
      .finally(() => this.looks.delete(look));
    this.looks.add(look);
  }

  private checkAll(): void {
    for (const runtime of this.syncs.values()) void this.check(runtime);
  }

  /**
   * One evaluation of a sync; one asked while another runs follows it (that one may have read
   * before the news), and any more asked meanwhile join that follower. Failures are logged.
   */
  check(runtime: SyncRuntime): Promise<Alert[]> {
    const name = runtime.sync.name;
    const current = this.running.get(name);
    if (current) {
      let next = this.queued.get(name);
      if (!next) {
        next = current.then(() => {
          this.queued.delete(name);
          return this.check(runtime);
        });
        this.queued.set(name, next);
      }
      return next;
    }
    const run = this.evaluate(runtime)
      .catch((err: unknown) => {
        this.log.warn({ sync: name, err: messageOf(err) }, 'could not look at the alert conditions');
        return [] as Alert[];
      })
      .finally(() => this.running.delete(name));
    this.running.set(name, run);
    return run;
  }

  /** Reads the sync's facts, works out what changed and sends it; returns what this replica sent. */
  async evaluate(runtime: SyncRuntime): Promise<Alert[]> {
    const name = runtime.sync.name;
    let store = this.stores.get(name);
    if (!store) {
      store = new AlertStore(this.redis, this.prefix, name);
      this.stores.set(name, store);
    }
    // Another replica looking at this sync now may have read before what made this look: wait for it a little.
    let owner = await store.lock(LOCK_MS);
    for (let i = 0; !owner && i < LOCK_TRIES; i++) {
      await sleep(LOCK_RETRY_MS);
      owner = await store.lock(LOCK_MS);
    }
    if (!owner) return [];
    try {
      const now = Date.now();
      const facts = await this.facts(runtime, now);
      const active = activeConditions(facts, { waiting: this.config.backlog.waiting, ageMs: this.config.backlog.age }, now).filter((c) =>
        this.dispatcher.wants(c.kind),
      );
      const changes = alertChanges(active, await store.alerted(), now);
      const settled = (alert: Alert) => !facts.unsettled?.includes(alert.kind);
      const firing = changes.firing.filter(settled);
      const resolved = changes.resolved.filter(settled);
      const sent: Alert[] = [];
      for (const alert of firing) {
        if (await store.claimFiring(alert.key, { kind: alert.kind, summary: alert.summary, sinceMs: alert.atMs })) sent.push(alert);
      }
      for (const alert of resolved) {
        if (await store.claimResolved(alert.key)) sent.push(alert);
      }
      for (const alert of sent) this.dispatcher.send(alert);
      return sent;
    } finally {
      await store.unlock(owner).catch(() => undefined);
    }
  }

  private async facts(runtime: SyncRuntime, now: number): Promise<SyncFacts> {
    const [health, held, outside, waiting, oldest] = await Promise.all([
      runtime.health.load(),
      runtime.fastLane.held(),
      runtime.sides.state.loadOutsideCompany(),
      runtime.queues.operations.getJobCountByTypes('waiting', 'prioritized'),
      runtime.queues.operations.getJobs(['waiting', 'prioritized'], 0, 0, true),
    ]);
    const cycleAt = health.lastCycleAt ?? 0;
    let report = this.reports.get(runtime.sync.name);
    let settled = true;
    // The last report is read when a newer cycle finished (a big one is megabytes), and now and
    // then regardless: a cycle whose job died is reported without a health record.
    if (!report || report.cycleAt !== cycleAt || now - report.readAtMs > REPORT_REFRESH_MS) {
      const [latest] = cycleAt ? await runtime.store.reports(1) : [];
      const read = reportFacts(latest, cycleAt);
      if (report && report.cycleAt !== cycleAt && read.lastCycle?.cycleId === report.lastCycle?.cycleId) {
        // The health of a newer cycle is saved just before its report: until the report is there, its conditions are left as they are.
        settled = false;
      } else {
        report = read;
        this.reports.set(runtime.sync.name, report);
      }
    }
    const oldestAt = oldest.length ? Math.min(...oldest.map((job) => job.timestamp)) : undefined;
    return {
      sync: runtime.sync.name,
      ...(settled ? {} : { unsettled: ['cycle-failed', 'held'] as const }),
      ...(report.lastCycle ? { lastCycle: report.lastCycle } : {}),
      ...(health.quarantinedUntil !== undefined
        ? { quarantine: { untilMs: health.quarantinedUntil, ...(health.reason ? { reason: health.reason } : {}) } }
        : {}),
      held: { ...report.held, fastLaneDeactivations: held.filter((h) => h.kind !== 'recycled-address').length },
      outsideCompany: [...outside].map(([email, record]) => ({ email, atMs: record.atMs, message: record.message })),
      backlog: { waiting, ...(oldestAt !== undefined ? { oldestAgeMs: Math.max(0, now - oldestAt) } : {}) },
    };
  }

  async close(graceMs: number): Promise<void> {
    clearInterval(this.timer);
    await Promise.allSettled([...this.looks, ...this.running.values(), ...this.queued.values()]);
    await this.dispatcher.close(graceMs);
  }
}
