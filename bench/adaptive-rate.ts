import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { parseConfig } from '../src/config/load.js';
import { writeFileExport } from '../src/connectors/file/manifest.js';
import { Daemon } from '../src/runtime/daemon.js';
import { requestCycle, waitForCycleReport } from '../src/runtime/trigger.js';
import { RequestRateStore } from '../src/store/request-rate.js';
import { Redis } from 'ioredis';
import { BENCH_TOKEN, REDIS_URL, dropPrefix, startEmulatorProcess } from './emulator-process.js';

/** The emulator's limit (requests per second, 429 with Retry-After beyond it). */
const LIMIT = Number(process.env.BENCH_RATE_LIMIT ?? 200);
const TARGET = { share: 0.9, throttled: 0.02 };

function exportOf(dir: string, users: number, name: (i: number) => string): void {
  writeFileExport(dir, {
    'users.json': JSON.stringify(Array.from({ length: users }, (_, i) => ({ id: `e${i}`, email: `user${i}@bench.example`, displayName: name(i) }))),
  });
}

/**
 * One sync against the emulator limited to LIMIT requests/s, through the real queue and workers:
 * a cycle of creates (the rate is learned, starting at `rate.start`), then cycles of renames from
 * the learned rate, measured. Returns what TeamViewer saw in the measured cycles.
 */
async function run(opts: { label: string; users: number; rate: string; learn: boolean; measuredCycles: number; unlimited?: boolean }) {
  const emulator = await startEmulatorProcess(0, { extraArgs: opts.unlimited ? [] : ['--rate-limit', `${LIMIT}/1000`] });
  const dir = mkdtempSync(join(tmpdir(), 'tvsync-bench-rate-'));
  exportOf(dir, opts.users, (i) => `User ${i}`);
  const prefix = `tvsync-bench-rate-${process.pid}-${opts.label}`;
  const config = parseConfig(
    `redis: { url: "${REDIS_URL}", prefix: ${prefix} }
syncs:
  - name: bench
    source: { type: file, path: ${dir}, settle: 0s }
    target: { baseUrl: ${emulator.baseUrl}, token: "\${T}", rate: ${opts.rate}, concurrency: 16, tokenOwner: owner@bench.example }
`,
    { env: { T: BENCH_TOKEN } },
  );
  // When each write was answered: the sustained rate is taken over the middle of the write phase,
  // without the cycle's reads, planning and report.
  let answers: number[] = [];
  const daemon = await Daemon.start(config, pino({ level: process.env.BENCH_LOG ?? 'silent' }), {
    scheduler: false,
    worker: true,
    runtime: { pollMs: 25 },
    onResponse: (_sync, info) => {
      if (info.method !== 'GET' && info.status !== 429) answers.push(performance.now());
    },
  });
  const redis = new Redis(REDIS_URL);
  try {
    const runtime = daemon.runtime('bench');
    const cycle = async () => {
      const { requestedAt } = await requestCycle(runtime.queues.cycles, 'bench', 'once');
      const report = await waitForCycleReport(runtime.store, requestedAt, { timeoutMs: 900_000, pollMs: 25 });
      if (report?.outcome !== 'succeeded') throw new Error(`cycle ${report?.outcome}: ${JSON.stringify(report?.operations)}`);
      return report;
    };
    // The creates run from the start rate; without learning they are the measured writes themselves.
    if (opts.learn) await cycle();
    let seconds = 0;
    let requests = 0;
    let throttled = 0;
    let sustainedWrites = 0;
    let sustainedMs = 0;
    for (let round = 0; round < opts.measuredCycles; round++) {
      if (opts.learn || round > 0) exportOf(dir, opts.users, (i) => `User ${i} (${round + 1})`);
      await emulator.resetStats();
      answers = [];
      const started = process.hrtime.bigint();
      await cycle();
      seconds += Number(process.hrtime.bigint() - started) / 1e9;
      const stats = await emulator.stats();
      requests += stats.requests;
      throttled += stats.rateLimited;
      const from = Math.floor(answers.length * 0.1);
      const to = Math.floor(answers.length * 0.9);
      sustainedWrites += to - from;
      sustainedMs += (answers[to] ?? 0) - (answers[from] ?? 0);
    }
    const learned = await new RequestRateStore(redis, prefix, 'bench').load();
    const achieved = sustainedWrites / (sustainedMs / 1000);
    const wholeCycles = (requests - throttled) / seconds;
    return {
      seconds: Number(seconds.toFixed(1)),
      requests,
      answered429: throttled,
      achievedPerSecond: Math.round(achieved),
      shareOfLimit: Number((achieved / LIMIT).toFixed(3)),
      wholeCyclesPerSecond: Math.round(wholeCycles),
      share429: Number((throttled / Math.max(1, requests)).toFixed(4)),
      learnedRate: learned ? Math.round(learned.rate) : undefined,
    };
  } finally {
    redis.disconnect();
    await daemon.stop();
    await emulator.stop();
    await dropPrefix(prefix);
  }
}

/**
 * The adaptive rate against an emulator limited to LIMIT requests/s: the share of the limit it
 * sustains (writes answered per second over the middle 80% of the write phase) and the share of
 * requests answered 429, against the old fixed default of 10/s. wholeCyclesPerSecond counts the
 * cycles' reads, planning and reports in as well.
 */
export async function benchAdaptiveRate() {
  const users = Number(process.env.BENCH_RATE_USERS ?? 3000);
  const adaptive = await run({ label: 'adaptive', users, rate: '{ start: 10, ceiling: 5000 }', learn: true, measuredCycles: 2 });
  // The old default: a fixed 10 requests/s, whatever TeamViewer allows (fewer users: it is slow).
  const fixed = await run({ label: 'fixed', users: Math.max(50, Math.round(users / 20)), rate: '{ start: 10, ceiling: 10 }', learn: false, measuredCycles: 1 });
  // What the queue and workers reach on this machine with no limit at all: a busy machine may not reach LIMIT whatever the rate.
  const unlimited = await run({ label: 'unlimited', users, rate: '{ start: 5000, ceiling: 5000 }', learn: false, measuredCycles: 1, unlimited: true });
  return {
    bench: `adaptive request rate against the emulator limited to ${LIMIT} requests/s (${users} users: creates to learn, then two cycles of renames measured)`,
    limitPerSecond: LIMIT,
    adaptive,
    fixedDefault10: fixed,
    noLimitPerSecond: unlimited.achievedPerSecond,
    shareOfReachable: Number((adaptive.achievedPerSecond / Math.min(LIMIT, unlimited.achievedPerSecond)).toFixed(3)),
    speedupOverFixed: Number((adaptive.achievedPerSecond / Math.max(1, fixed.achievedPerSecond)).toFixed(1)),
    target: `at least ${TARGET.share * 100}% of the limit sustained, under ${TARGET.throttled * 100}% of requests answered 429`,
    targetMet: adaptive.shareOfLimit >= TARGET.share && adaptive.share429 < TARGET.throttled,
  };
}
