import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pino from 'pino';
import { parseConfig } from '../src/config/load.js';
import { writeFileExport } from '../src/connectors/file/manifest.js';
import type { EmulatorState } from '../src/emulator/store.js';
import type { LinkChange } from '../src/plan/types.js';
import { Daemon } from '../src/runtime/daemon.js';
import { requestCycle, waitForCycleReport } from '../src/runtime/trigger.js';
import { RedisSyncState } from '../src/store/sync-state.js';
import { BENCH_TOKEN, REDIS_URL, dropPrefix, startEmulatorProcess } from './emulator-process.js';
import { PeakMemory } from './peak-memory.js';

/*
 * A steady cycle: a company of USERS TeamViewer users, all linked already, and an IdP in which 1%
 * changed since the last cycle (renames, leavers, newcomers). The emulator runs in its own process
 * with 20 ms latency; the sync runs 16 operations at once. The company is loaded into the emulator
 * and the link table written to Redis directly, as a first cycle would have left them (provisioning
 * 100,000 users through the queue would take most of the run). Measured twice in the same run:
 * lists read in pages of 100 one after another (the baseline), and the defaults (pages of 1000,
 * `concurrency` of them at once). TVSYNC_BENCH_STEADY_USERS shrinks the company for a quick look.
 */

const USERS = Number(process.env.TVSYNC_BENCH_STEADY_USERS ?? 100_000);
const LATENCY_MS = 20;
const CONCURRENCY = 16;
const TARGET_MS = 5000;
const FIRST_TV_NUMBER = 1_000_001;

interface Churn {
  renamed: number;
  left: number;
  joined: number;
}

/** Every 100th person churns: four in ten are renamed, three in ten leave, and as many newcomers join. */
function churnOf(users: number): { idp: { id: string; email: string; displayName: string }[]; churn: Churn } {
  const idp: { id: string; email: string; displayName: string }[] = [];
  const churn: Churn = { renamed: 0, left: 0, joined: 0 };
  for (let i = 0; i < users; i++) {
    const kind = i % 100 === 0 ? (i / 100) % 10 : -1;
    if (kind >= 4 && kind <= 6) {
      churn.left++;
      continue;
    }
    if (kind >= 0 && kind <= 3) churn.renamed++;
    idp.push({ id: `e${i}`, email: `user${i}@bench.example`, displayName: kind >= 0 && kind <= 3 ? `User ${i} Renamed` : `User ${i}` });
  }
  for (let j = 0; j < churn.left; j++) {
    idp.push({ id: `e${users + j}`, email: `user${users + j}@bench.example`, displayName: `User ${users + j}` });
    churn.joined++;
  }
  return { idp, churn };
}

async function seedLinks(prefix: string, users: number): Promise<void> {
  const redis = new Redis(REDIS_URL);
  try {
    const state = new RedisSyncState(redis, prefix, 'bench');
    for (let from = 0; from < users; from += 10_000) {
      const changes: LinkChange[] = [];
      for (let i = from; i < Math.min(users, from + 10_000); i++) {
        changes.push({ action: 'set', sourceId: `e${i}`, tvUserId: `u${FIRST_TV_NUMBER + i}`, reason: 'matched-by-email' });
      }
      await state.applyLinkChanges(changes);
    }
  } finally {
    await redis.quit();
  }
}

/** One steady cycle against a freshly loaded company; `target` is the extra target settings of the variant. */
async function steadyCycle(name: string, latencyMs: number, target: string, files: { stateFile: string; exportDir: string }, churn: Churn) {
  const emulator = await startEmulatorProcess(latencyMs, { stateFile: files.stateFile });
  const prefix = `tvsync-bench-steady-${process.pid}-${name}`;
  await seedLinks(prefix, USERS);
  const config = parseConfig(
    `redis: { url: "${REDIS_URL}", prefix: ${prefix} }
syncs:
  - name: bench
    source: { type: file, path: ${files.exportDir}, settle: 0s }
    target: { baseUrl: ${emulator.baseUrl}, token: "\${T}", requestsPerSecond: 20000, concurrency: ${CONCURRENCY}, tokenOwner: owner@bench.example${target} }
    policy: { deactivationThreshold: { maxCount: 100000, maxPercent: 100, minCountForPercent: 0 } }
`,
    { env: { T: BENCH_TOKEN } },
  );
  // The span of each list read, from the first page asked to the last answer, before any write.
  const spans: Record<string, { from: number; to: number }> = {};
  let writing = false;
  let cycleStart = 0;
  const writes = { from: Number.POSITIVE_INFINITY, to: 0 };
  const onResponse = (_sync: string, info: { method: string; path: string; ms: number }) => {
    if (info.method !== 'GET') {
      writing = true;
      const now = performance.now();
      writes.from = Math.min(writes.from, now - info.ms);
      writes.to = Math.max(writes.to, now);
    }
    if (info.method !== 'GET' || (info.path !== '/Users' && info.path !== '/Groups')) return;
    if (info.path === '/Users' && writing) return;
    const now = performance.now();
    const span = spans[info.path] ?? { from: now - info.ms, to: now };
    spans[info.path] = { from: Math.min(span.from, now - info.ms), to: Math.max(span.to, now) };
  };
  const daemon = await Daemon.start(config, pino({ level: process.env.BENCH_LOG ?? 'silent' }), {
    scheduler: false,
    worker: true,
    // The daemon's own progress polling (pollMs as configured by default): part of what a cycle costs.
    onResponse,
  });
  try {
    const runtime = daemon.runtime('bench');
    await emulator.resetStats();
    global.gc?.();
    const memory = new PeakMemory();
    const cpu = process.cpuUsage();
    const emulatorCpu = emulator.cpuMs();
    const started = performance.now();
    cycleStart = started;
    const { requestedAt } = await requestCycle(runtime.queues.cycles, 'bench', 'once');
    const report = await waitForCycleReport(runtime.store, requestedAt, { timeoutMs: 600_000, pollMs: 25 });
    const ms = performance.now() - started;
    const cpuUsed = process.cpuUsage(cpu);
    const emulatorCpuAfter = emulator.cpuMs();
    const peak = memory.stop();
    const ops = report?.operations;
    if (
      report?.outcome !== 'succeeded' ||
      ops?.updateUser.applied !== churn.renamed ||
      ops.deactivateUser.applied !== churn.left ||
      ops.createUser.applied !== churn.joined
    ) {
      throw new Error(`the steady cycle did not do the churn: ${report?.outcome} ${report?.failure?.message ?? ''} ${JSON.stringify(ops)}`);
    }
    const stats = await emulator.stats();
    const span = (path: string) => Math.round((spans[path]?.to ?? 0) - (spans[path]?.from ?? 0));
    return {
      ms: Math.round(ms),
      usersReadMs: span('/Users'),
      // Where the rest of the cycle goes: until the first page is asked, from the user list's end to
      // the first write (planning, enqueueing), the writes, and from the last write to the report.
      beforeReadMs: Math.round((spans['/Users']?.from ?? cycleStart) - cycleStart),
      planMs: Math.round(writes.from - (spans['/Users']?.to ?? cycleStart)),
      writesMs: Math.round(writes.to - writes.from),
      afterWritesMs: Math.round(started + ms - writes.to),
      groupsReadMs: span('/Groups'),
      // CPU time, not wall time: on a busy machine the floor the cycle cannot go below. The bench
      // process is the daemon (and this harness); the emulator is TeamViewer's side.
      clientCpuMs: Math.round((cpuUsed.user + cpuUsed.system) / 1000),
      ...(emulatorCpu !== undefined && emulatorCpuAfter !== undefined ? { emulatorCpuMs: emulatorCpuAfter - emulatorCpu } : {}),
      userPages: stats.byRoute['GET /Users'] ?? 0,
      requests: stats.requests,
      peakRssMb: peak.rssMb,
      peakHeapMb: peak.heapMb,
    };
  } finally {
    await daemon.stop();
    await emulator.stop();
    await dropPrefix(prefix);
  }
}

export async function benchSteady() {
  const dir = mkdtempSync(join(tmpdir(), 'tvsync-bench-steady-'));
  try {
    const company: EmulatorState = {
      users: Array.from({ length: USERS }, (_, i) => ({
        id: `u${FIRST_TV_NUMBER + i}`,
        userName: `user${i}@bench.example`,
        displayName: `User ${i}`,
        active: true,
      })),
      groups: [],
      outsideEmails: [],
      counters: { nextUserNumber: FIRST_TV_NUMBER + USERS, nextGroupNumber: 1 },
    };
    const stateFile = join(dir, 'company.json');
    writeFileSync(stateFile, JSON.stringify(company));
    const exportDir = join(dir, 'idp');
    mkdirSync(exportDir);
    const { idp, churn } = churnOf(USERS);
    writeFileExport(exportDir, { 'users.json': JSON.stringify(idp) });
    const files = { stateFile, exportDir };

    const baseline = await steadyCycle('baseline', LATENCY_MS, ', pageSize: 100, readConcurrency: 1', files, churn);
    const parallel = await steadyCycle('parallel', LATENCY_MS, '', files, churn);
    const noLatency = await steadyCycle('no-latency', 0, '', files, churn);
    return {
      bench: `a steady cycle: ${USERS} users linked, 1% churn (${churn.renamed} renamed, ${churn.left} left, ${churn.joined} joined), ${LATENCY_MS} ms latency, concurrency ${CONCURRENCY}`,
      ms: parallel.ms,
      usersReadMs: parallel.usersReadMs,
      targetMs: TARGET_MS,
      targetMet: parallel.ms < TARGET_MS,
      ratioToBaseline: Number((parallel.ms / baseline.ms).toFixed(2)),
      readRatioToBaseline: Number((parallel.usersReadMs / baseline.usersReadMs).toFixed(3)),
      parallel,
      baseline: { ...baseline, setting: 'pages of 100, one at a time' },
      noLatency,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
