import type { Redis } from 'ioredis';
import { z } from 'zod';
import { syncKey } from '../store/sync-state.js';
import { secrets } from '../net/secrets.js';
import type { CycleReport } from './report.js';

/**
 * A sync that keeps failing stops hammering TeamViewer: like the IdPs' provisioning quarantine,
 * its scheduled cycles back off (6 h, then daily) until a person fixes the cause and a manual
 * cycle succeeds.
 */
export interface SyncHealth {
  consecutiveFailures: number;
  /** Epoch ms until which scheduled cycles are skipped; absent when not quarantined. */
  quarantinedUntil?: number;
  /** How many times in a row the sync was quarantined (decides the back-off). */
  quarantines: number;
  reason?: string;
  lastOutcome?: CycleReport['outcome'];
  lastFailureClass?: string;
  lastSuccessAt?: number;
  lastCycleAt?: number;
}

export const HEALTHY: SyncHealth = { consecutiveFailures: 0, quarantines: 0 };

const FIRST_QUARANTINE_MS = 6 * 3_600_000;
const LATER_QUARANTINE_MS = 24 * 3_600_000;
/** Cycles in a row whose operations mostly failed before the sync is quarantined. */
const FAILING_CYCLES_BEFORE_QUARANTINE = 3;

/** Failures that say something about the sync as a whole; a 403 on one admin or a taken address does not. */
const SYSTEMIC: ReadonlySet<string> = new Set(['transient', 'rate-limited', 'unauthorised']);

/**
 * A cycle counts as failing when it failed as a whole, or when most of the operations it tried
 * failed for a reason that is not the object's own.
 */
export function isFailingCycle(report: CycleReport): boolean {
  if (report.outcome === 'failed') return true;
  let tried = 0;
  for (const counts of Object.values(report.operations)) tried += counts.applied + counts.failed;
  const systemic = report.failures.filter((f) => SYSTEMIC.has(f.failureClass ?? 'transient')).length;
  return tried >= 5 && systemic * 2 > tried;
}

/** Pure: the sync's health after a cycle. */
export function nextHealth(previous: SyncHealth, report: CycleReport, nowMs: number): SyncHealth {
  if (!isFailingCycle(report)) {
    return { consecutiveFailures: 0, quarantines: 0, lastOutcome: report.outcome, lastSuccessAt: nowMs, lastCycleAt: nowMs };
  }
  const consecutiveFailures = previous.consecutiveFailures + 1;
  const failureClass = report.failure?.failureClass;
  const health: SyncHealth = { ...previous, consecutiveFailures, lastOutcome: report.outcome, lastCycleAt: nowMs };
  if (failureClass) health.lastFailureClass = failureClass;
  else delete health.lastFailureClass;
  // A refused token will not heal by itself: quarantine at once rather than retry every cycle.
  if (failureClass === 'unauthorised' || consecutiveFailures >= FAILING_CYCLES_BEFORE_QUARANTINE) {
    const quarantines = previous.quarantines + 1;
    health.quarantines = quarantines;
    health.quarantinedUntil = nowMs + (quarantines === 1 ? FIRST_QUARANTINE_MS : LATER_QUARANTINE_MS);
    health.reason =
      failureClass === 'unauthorised'
        ? `TeamViewer refused the token: ${report.failure?.message ?? ''}`.trim()
        : `${consecutiveFailures} failing cycles in a row (last: ${report.failure?.message ?? 'most operations failed'})`;
  }
  return health;
}

export function isQuarantined(health: SyncHealth, nowMs: number): boolean {
  return health.quarantinedUntil !== undefined && health.quarantinedUntil > nowMs;
}

const healthSchema = z.object({
  consecutiveFailures: z.number(),
  quarantinedUntil: z.number().optional(),
  quarantines: z.number(),
  reason: z.string().optional(),
  lastOutcome: z.enum(['succeeded', 'partial', 'failed']).optional(),
  lastFailureClass: z.string().optional(),
  lastSuccessAt: z.number().optional(),
  lastCycleAt: z.number().optional(),
});

export class HealthStore {
  private readonly key: string;
  constructor(
    private readonly redis: Redis,
    prefix: string,
    sync: string,
  ) {
    this.key = syncKey(prefix, sync, 'health');
  }

  async load(): Promise<SyncHealth> {
    const raw = await this.redis.get(this.key);
    if (!raw) return HEALTHY;
    try {
      const parsed = healthSchema.safeParse(JSON.parse(raw));
      return parsed.success ? (parsed.data as SyncHealth) : HEALTHY;
    } catch {
      return HEALTHY;
    }
  }

  async save(health: SyncHealth): Promise<void> {
    await this.redis.set(this.key, JSON.stringify(secrets.scrubDeep(health)));
  }

  async record(report: CycleReport, nowMs: number): Promise<SyncHealth> {
    const health = nextHealth(await this.load(), report, nowMs);
    await this.save(health);
    return health;
  }
}
