import { describe, expect, it } from 'vitest';
import { isFailingCycle, isQuarantined, nextHealth } from '../../src/runtime/health.js';
import { HEALTHY } from '../../src/store/health.js';
import { buildReport, type OperationResult } from '../../src/plan/report.js';

const H = 3_600_000;

function report(opts: { failureClass?: 'unauthorised' | 'source-read'; applied?: number; failed?: number; failedAs?: 'invalid' | 'transient' }) {
  const results: OperationResult[] = [];
  for (let i = 0; i < (opts.applied ?? 0); i++)
    results.push({ key: `a${i}`, kind: 'createUser', sourceId: `a${i}`, email: `a${i}@x.test`, after: {}, status: 'applied', message: '', attempts: 1 });
  for (let i = 0; i < (opts.failed ?? 0); i++)
    results.push({
      key: `f${i}`,
      kind: 'createUser',
      sourceId: `f${i}`,
      email: `f${i}@x.test`,
      after: {},
      status: 'failed',
      failureClass: opts.failedAs ?? 'transient',
      message: '',
      attempts: 1,
    });
  return buildReport({
    sync: 's',
    cycleId: 'c',
    trigger: 'schedule',
    startedAtMs: 0,
    finishedAtMs: 1,
    results,
    ...(opts.failureClass ? { failure: { failureClass: opts.failureClass, message: 'boom' } } : {}),
  });
}

describe('quarantine', () => {
  it('a cycle fails when it failed as a whole or most of its operations failed', () => {
    expect(isFailingCycle(report({ failureClass: 'source-read' }))).toBe(true);
    expect(isFailingCycle(report({ applied: 2, failed: 4 }))).toBe(true);
    expect(isFailingCycle(report({ applied: 4, failed: 2 }))).toBe(false);
    expect(isFailingCycle(report({ failed: 3 }))).toBe(false);
    // Failures that concern single objects (a 403 on an admin, a taken address) do not quarantine a sync.
    expect(isFailingCycle(report({ applied: 1, failed: 9, failedAs: 'invalid' }))).toBe(false);
  });

  it('quarantines at once on a refused token, for 6 hours, then daily', () => {
    const first = nextHealth(HEALTHY, report({ failureClass: 'unauthorised' }), 0);
    expect(first.quarantinedUntil).toBe(6 * H);
    expect(first.reason).toMatch(/refused the token/);
    expect(isQuarantined(first, 5 * H)).toBe(true);
    expect(isQuarantined(first, 7 * H)).toBe(false);
    const second = nextHealth(first, report({ failureClass: 'unauthorised' }), 7 * H);
    expect(second.quarantinedUntil).toBe(7 * H + 24 * H);
  });

  it('quarantines after three failing cycles in a row, and a success lifts it', () => {
    let health = HEALTHY;
    for (let i = 0; i < 2; i++) health = nextHealth(health, report({ applied: 1, failed: 9 }), i);
    expect(health.quarantinedUntil).toBeUndefined();
    health = nextHealth(health, report({ applied: 1, failed: 9 }), 2);
    expect(health.quarantinedUntil).toBe(2 + 6 * H);
    expect(health.reason).toMatch(/3 failing cycles in a row/);
    const lifted = nextHealth(health, report({ applied: 3 }), 10);
    expect(lifted).toEqual({ consecutiveFailures: 0, quarantines: 0, lastOutcome: 'succeeded', lastSuccessAt: 10, lastCycleAt: 10 });
    expect(isQuarantined(lifted, 11)).toBe(false);
  });
});

describe('renderReport', () => {
  it('caps long lists for overviews and points at the provisioning log', async () => {
    const { renderReport } = await import('../../src/cli/render-report.js');
    const r = report({ applied: 1, failed: 25 });
    const text = renderReport(r, { maxItems: 10 });
    expect(text.split('\n').filter((l) => l.startsWith('  failed')).length).toBe(10);
    expect(text).toContain('… 15 more failures (tvsync log --sync s --cycle c)');
    expect(
      renderReport(r)
        .split('\n')
        .filter((l) => l.startsWith('  failed')).length,
    ).toBe(25);
  });
});
