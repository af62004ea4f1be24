import pino from 'pino';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../src/config/load.js';
import type { TvsyncConfig } from '../src/config/schema.js';
import { writeFileExport } from '../src/connectors/file/manifest.js';
import { Daemon } from '../src/runtime/daemon.js';
import { connectRedis } from '../src/runtime/redis.js';
import { Observability } from '../src/runtime/observability.js';
import { requestCycle, waitForCycleReport } from '../src/runtime/trigger.js';
import { DEFAULT_RUNTIME, operationBatchSize } from '../src/runtime/queues.js';
import { createTeamViewerClient } from '../src/runtime/wiring.js';
import { RedisServer } from '../test/support/redis-server.js';
import { BENCH_TOKEN, startEmulatorProcess } from './emulator-process.js';
import { infoField, median } from './figures.js';

const TARGET_RATIO = 1.25;

/**
 * Creates sent, untimed, before each path's timed ones: the emulator (a process of its own, started
 * for each path) and this process's code reach their steady pace first. A daemon runs for days; the
 * first second of a fresh process, slower on both paths alike, would otherwise dilute the ratio.
 */
const WARM_UP = Number(process.env.BENCH_WARM_UP ?? 2000);

function benchConfig(redisUrl: string, baseUrl: string, dir: string, concurrency: number, sync: string): TvsyncConfig {
  return parseConfig(
    `redis: { url: "${redisUrl}", prefix: tvsync }
syncs:
  - name: ${sync}
    source: { type: file, path: ${dir}, settle: 0s }
    target: { baseUrl: ${baseUrl}, token: "\${T}", requestsPerSecond: 100000, concurrency: ${concurrency}, tokenOwner: owner@bench.example }
`,
    { env: { T: BENCH_TOKEN } },
  );
}

const person = (run: string, i: number) => ({ id: `${run}${i}`, email: `${run}${i}@bench.example`, displayName: `User ${run}${i}` });

/** How long a path took, and the CPU this process spent on it (every thread: JavaScript, GC, sockets). */
interface PathRun {
  ms: number;
  cpuMs: number;
}

/** The queue path's run, with the CPU Redis spent over the timed cycle and the commands it ran (those inside scripts too). */
interface QueueRun extends PathRun {
  redis: RedisUsage;
}

interface RedisUsage {
  cpuMs: number;
  commands: number;
}

/** Redis's own CPU time so far (every thread) and the commands it has run, scripts' own included, from INFO. */
async function redisUsage(redis: ReturnType<typeof connectRedis>): Promise<RedisUsage> {
  const info = await redis.info();
  const field = (name: string) => infoField(info, name) ?? Number.NaN;
  return { cpuMs: (field('used_cpu_sys') + field('used_cpu_user')) * 1000, commands: field('total_commands_processed') };
}

const cpuMsSince = (start: NodeJS.CpuUsage) => {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
};

/** `count` creates through `client`, `concurrency` at a time. */
async function createAll(client: ReturnType<typeof createTeamViewerClient>, run: string, count: number, concurrency: number): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < count; i = next++) {
        const p = person(run, i);
        await client.createUser({ userName: p.email, displayName: p.displayName, active: true });
      }
    }),
  );
}

/** The creates sent straight through the SCIM client, `concurrency` at a time: what the queue's path is measured against. */
async function direct(users: number, concurrency: number, redisUrl: string, dir: string, latencyMs: number): Promise<PathRun> {
  const emulator = await startEmulatorProcess(latencyMs);
  try {
    const client = createTeamViewerClient(benchConfig(redisUrl, emulator.baseUrl, dir, concurrency, 'direct').syncs[0]!.target);
    await createAll(client, 'warm-', WARM_UP, concurrency);
    const cpu = process.cpuUsage();
    const started = performance.now();
    await createAll(client, 'd', users, concurrency);
    return { ms: performance.now() - started, cpuMs: cpuMsSince(cpu) };
  } finally {
    await emulator.stop();
  }
}

/**
 * The same creates as a cycle's operations through the real queue and workers, with the hooks
 * `tvsync run` wires (metrics, provisioning log): from the plan persisted to the last outcome
 * recorded, so reading and planning are not counted. A first, untimed cycle creates the warm-up
 * users; the timed cycle creates the others. Each run has a sync of its own, so none starts
 * from a request rate another run's latency taught.
 */
async function queued(users: number, concurrency: number, redisUrl: string, latencyMs: number, run: string): Promise<QueueRun> {
  const emulator = await startEmulatorProcess(latencyMs);
  const dir = mkdtempSync(join(tmpdir(), 'tvsync-bench-'));
  const warmUp = Array.from({ length: WARM_UP }, (_, i) => person('warm-', i));
  const timed = Array.from({ length: users }, (_, i) => person('q', i));
  const sync = `bench-c${concurrency}-${latencyMs}ms-${run}`;
  const config = benchConfig(redisUrl, emulator.baseUrl, dir, concurrency, sync);
  // The connection `tvsync run` gives its observability.
  const redis = connectRedis(redisUrl, 'producer');
  const log = pino({ level: process.env.BENCH_LOG ?? 'silent' });
  const observability = new Observability(config, redis, log);
  const hooks = observability.hooks();
  let timing = false;
  let timedCycle: string | undefined;
  let plannedAt = 0;
  let lastAt = 0;
  let cpu = process.cpuUsage();
  let cpuMs = 0;
  let recorded = 0;
  const daemon = await Daemon.start(config, log, {
    scheduler: false,
    worker: true,
    runtime: { pollMs: 25 },
    ...hooks,
    onPlanned: async (sync, cycleId, plan) => {
      if (timing) {
        timedCycle = cycleId;
        plannedAt = performance.now();
        cpu = process.cpuUsage();
      }
      await hooks.onPlanned?.(sync, cycleId, plan);
    },
    onResults: async (sync, cycleId, results, via) => {
      await hooks.onResults?.(sync, cycleId, results, via);
      if (cycleId !== timedCycle) return;
      recorded += results.length;
      lastAt = performance.now();
      if (recorded === users) cpuMs = cpuMsSince(cpu);
    },
  });
  try {
    const runtime = daemon.runtime(sync);
    const cycle = async (people: typeof timed, expected: number) => {
      writeFileExport(dir, { 'users.json': JSON.stringify(people) });
      const { requestedAt } = await requestCycle(runtime.queues.cycles, sync, 'once');
      const report = await waitForCycleReport(runtime.store, requestedAt, { timeoutMs: 600_000, pollMs: 50 });
      if (report?.operations.createUser.applied !== expected) throw new Error(`operations incomplete: ${JSON.stringify(report?.operations)}`);
    };
    if (WARM_UP > 0) await cycle(warmUp, WARM_UP);
    timing = true;
    const redisBefore = await redisUsage(redis);
    await cycle([...warmUp, ...timed], users);
    const redisAfter = await redisUsage(redis);
    if (recorded !== users) throw new Error(`${recorded} of ${users} outcomes observed`);
    return {
      ms: lastAt - plannedAt,
      cpuMs,
      redis: { cpuMs: redisAfter.cpuMs - redisBefore.cpuMs, commands: redisAfter.commands - redisBefore.commands },
    };
  } finally {
    await daemon.stop();
    await redis.quit();
    await emulator.stop();
  }
}

/**
 * Runs of each path, alternated: on a shared machine one pair can differ by a quarter from the
 * next, so a single pair decides nothing; the median of the pairs' ratios is the figure.
 */
const REPEATS = Number(process.env.BENCH_REPEATS ?? 3);

/** Both paths at one concurrency and latency, REPEATS pairs: throughput, their ratio, and this process's CPU per operation (medians). */
async function compare(users: number, concurrency: number, latencyMs: number, redisUrl: string, dir: string) {
  const pairs: { d: PathRun; q: QueueRun }[] = [];
  for (let run = 0; run < REPEATS; run++) {
    const d = await direct(users, concurrency, redisUrl, dir, latencyMs);
    pairs.push({ d, q: await queued(users, concurrency, redisUrl, latencyMs, `r${run}`) });
  }
  const ratios = pairs.map(({ d, q }) => q.ms / d.ms);
  const ratio = median(ratios);
  return {
    directPerSecond: Math.round(median(pairs.map(({ d }) => users / (d.ms / 1000)))),
    queuePerSecond: Math.round(median(pairs.map(({ q }) => users / (q.ms / 1000)))),
    ratio: Number(ratio.toFixed(2)),
    ratios: ratios.map((r) => Number(r.toFixed(2))),
    targetMet: ratio <= TARGET_RATIO,
    // Where the difference goes: the worker's own CPU for each operation against the client's alone.
    directCpuUsPerOp: Math.round(median(pairs.map(({ d }) => (d.cpuMs * 1000) / users))),
    queueCpuUsPerOp: Math.round(median(pairs.map(({ q }) => (q.cpuMs * 1000) / users))),
    // Redis's share, over the whole timed cycle (its plan and report too): what a deployment sizes Redis by.
    redisCpuUsPerOp: Math.round(median(pairs.map(({ q }) => (q.redis.cpuMs * 1000) / users))),
    redisCommandsPerOp: Number(median(pairs.map(({ q }) => q.redis.commands / users)).toFixed(1)),
  };
}

/**
 * What the queue costs: N user creates through the queue and workers against the same N through
 * the SCIM client directly, at the same concurrency, into the emulator at 0 ms latency, so the
 * difference is the queue's own work (Redis round trips, job bookkeeping, outcome and log writes).
 * The emulator, Redis and this process share the machine's cores, so at 0 ms the worker's CPU per
 * operation decides the figure. The same comparison at 5 ms (a TeamViewer answering that fast is
 * already a near one) shows the cost where the answers, not the CPU, set the pace.
 */
export async function benchQueueCost() {
  const users = Number(process.env.BENCH_USERS ?? 10_000);
  const server = await RedisServer.start();
  const dir = mkdtempSync(join(tmpdir(), 'tvsync-bench-'));
  const result: Record<string, unknown> = {
    bench: `${users.toLocaleString('en')} user creates through the queue vs the SCIM client directly, emulator at 0 ms, Redis of its own, each path after ${WARM_UP.toLocaleString('en')} untimed creates; medians of ${REPEATS} alternated pairs`,
    target: `queue time / direct time <= ${TARGET_RATIO}`,
    operationsPerJob: operationBatchSize(users, DEFAULT_RUNTIME),
  };
  try {
    for (const concurrency of [4, 16]) result[`c${concurrency}`] = await compare(users, concurrency, 0, server.url, dir);
    const fewer = Math.max(1000, Math.round(users / 4));
    for (const concurrency of [4, 16])
      result[`c${concurrency} at 5 ms (${fewer.toLocaleString('en')} creates)`] = await compare(fewer, concurrency, 5, server.url, dir);
    return result;
  } finally {
    await server.kill();
  }
}
