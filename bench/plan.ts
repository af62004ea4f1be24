import type { DirectoryUser } from '../src/model/directory.js';
import type { TvUser } from '../src/model/teamviewer.js';
import { computePlan, type PlanInput } from '../src/plan/diff.js';
import { PeakMemory } from './peak-memory.js';

/** The targets for a million users; the 100k plan of the same run is the baseline a per-user cost is compared with. */
const TARGET = { ms: 3000, rssMb: 700 };

/**
 * n IdP users against n TeamViewer users, all linked, with 1% churn: a quarter each renamed,
 * disabled, removed from scope, and new.
 */
function planInput(n: number, churnShare: number): PlanInput {
  const churn = Math.round(n * churnShare);
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
  return {
    directory: { users: directory, complete: true },
    teamviewer,
    links,
    outsideCompany: new Map(),
    nowMs: Date.now(),
    policy: { protect: [], threshold: { maxCount: n, maxPercent: 100, minCountForPercent: 0 }, outsideCompanyRetryMs: 86_400_000 },
  };
}

function measure(n: number, churn: number) {
  let input: PlanInput | undefined = planInput(n, churn);
  global.gc?.();
  const inputRssMb = Math.round(process.memoryUsage().rss / 1048576);
  const memory = new PeakMemory();
  const started = process.hrtime.bigint();
  const cpuBefore = process.cpuUsage();
  const plan = computePlan(input);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  const cpu = process.cpuUsage(cpuBefore);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const peak = memory.stop();
  const result = {
    idpUsers: input.directory.users.length,
    teamviewerUsers: input.teamviewer.length,
    operations: plan.summary.operations,
    ms,
    cpuMs,
    inputRssMb,
    peak,
  };
  input = undefined;
  global.gc?.();
  return result;
}

/**
 * Planning a million users, with the plan of 100k users in the same run as the baseline: the cost
 * per user should not grow with the directory (it doubled before the plan used flat indexes).
 */
export async function benchPlan(opts: { users?: number; baselineUsers?: number; churn?: number } = {}) {
  const n = opts.users ?? 1_000_000;
  const baselineUsers = opts.baselineUsers ?? 100_000;
  const churn = opts.churn ?? 0.01;
  // The smaller plan runs thrice (the first warms the compiler); the fastest is the baseline.
  const baselines = [0, 1, 2].map(() => measure(baselineUsers, churn));
  const baseline = { ms: Math.min(...baselines.map((b) => b.ms)), cpuMs: Math.min(...baselines.map((b) => b.cpuMs)) };
  const large = measure(n, churn);
  // CPU time is reported beside wall time: on a busy machine it is the steadier of the two.
  const perUser = (ms: number, base: number) => Number((ms / n / (base / baselineUsers)).toFixed(2));
  return {
    bench: `plan ${n} vs ${n} users, ${churn * 100}% churn; baseline ${baselineUsers} in the same run`,
    idpUsers: large.idpUsers,
    teamviewerUsers: large.teamviewerUsers,
    operations: large.operations,
    ms: Math.round(large.ms),
    cpuMs: Math.round(large.cpuMs),
    peakRssMb: large.peak.rssMb,
    inputRssMb: large.inputRssMb,
    planRssMb: large.peak.rssMb - large.inputRssMb,
    baselineMs: Math.round(baseline.ms),
    baselineCpuMs: Math.round(baseline.cpuMs),
    perUserCostRatio: perUser(large.ms, baseline.ms),
    perUserCpuRatio: perUser(large.cpuMs, baseline.cpuMs),
    target: `under ${TARGET.ms} ms and ${TARGET.rssMb} MiB for ${n} users`,
    targetMet: large.ms < TARGET.ms && large.peak.rssMb < TARGET.rssMb,
  };
}
