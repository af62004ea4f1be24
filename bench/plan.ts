import type { DirectoryUser } from '../src/model/directory.js';
import type { TvUser } from '../src/model/teamviewer.js';
import { computePlan } from '../src/plan/diff.js';
import { PeakMemory } from './peak-memory.js';

/**
 * Planning 100,000 IdP users against 100,000 TeamViewer users, all linked, with 1% churn:
 * a quarter each renamed, disabled, removed from scope, and new.
 */
export async function benchPlan(opts: { users?: number; churn?: number } = {}) {
  const n = opts.users ?? 100_000;
  const churn = Math.round(n * (opts.churn ?? 0.01));
  const quarter = Math.floor(churn / 4);

  const teamviewer: TvUser[] = [];
  const links = new Map<string, string>();
  const directory: DirectoryUser[] = [];
  for (let i = 0; i < n; i++) {
    const email = `user${i}@corp.example`;
    teamviewer.push({ id: `u${1_000_000 + i}`, userName: email, email, displayName: `User ${i}`, active: true });
    links.set(`idp-${i}`, `u${1_000_000 + i}`);
    if (i < quarter) directory.push({ id: `idp-${i}`, email, displayName: `User ${i} Renamed`, active: true });
    else if (i < 2 * quarter) directory.push({ id: `idp-${i}`, email, displayName: `User ${i}`, active: false });
    else if (i < 3 * quarter) continue;
    else directory.push({ id: `idp-${i}`, email, givenName: 'User', familyName: String(i), active: true });
  }
  for (let i = 0; i < quarter; i++) directory.push({ id: `idp-new-${i}`, email: `new${i}@corp.example`, displayName: `New ${i}`, active: true });

  global.gc?.();
  const memory = new PeakMemory();
  const started = process.hrtime.bigint();
  const plan = computePlan({
    directory: { users: directory, complete: true },
    teamviewer,
    links,
    outsideCompany: new Map(),
    nowMs: Date.now(),
    policy: { protect: [], threshold: { maxCount: n, maxPercent: 100, minCountForPercent: 0 }, outsideCompanyRetryMs: 86_400_000 },
  });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  const peak = memory.stop();
  return {
    bench: 'plan 100k vs 100k, 1% churn',
    idpUsers: directory.length,
    teamviewerUsers: teamviewer.length,
    operations: plan.summary.operations,
    ms: Math.round(ms),
    peakRssMb: peak.rssMb,
    peakHeapMb: peak.heapMb,
    targetMet: ms < 1000 && peak.rssMb < 300,
  };
}
