import type { HealthStore, SyncHealth } from '../store/health.js';
import type { CycleReport } from '../plan/report.js';

/*
 * A sync that keeps failing stops hammering TeamViewer: like the IdPs' provisioning quarantine,
 * its scheduled cycles back off (6 h, then daily) until a person fixes the cause and a manual
 * cycle succeeds.
 */

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

/** Records a finished cycle in the sync's health and returns the new health. */
export async function recordHealth(store: HealthStore, report: CycleReport, nowMs: number): Promise<SyncHealth> {
  const health = nextHealth(await store.load(), report, nowMs);
  await store.save(health);
  return health;
}
