import pino from 'pino';
import type { Redis } from 'ioredis';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../src/config/load.js';
import { writeFileExport } from '../src/connectors/file/manifest.js';
import { Daemon } from '../src/runtime/daemon.js';
import { connectRedis } from '../src/runtime/redis.js';
import { Observability } from '../src/runtime/observability.js';
import { requestCycle, waitForCycleReport } from '../src/runtime/trigger.js';
import { RedisServer } from '../test/support/redis-server.js';
import { BENCH_TOKEN, startEmulatorProcess } from './emulator-process.js';
import { infoField } from './figures.js';

const MB = 1024 * 1024;
const TARGET_MB = 80;

/** What a key is, for the breakdown: BullMQ's keys by queue, tvsync's by store. */
function categoryOf(key: string): string {
  const bull = /^tvsync:(cycles|operations|changes)-bench:/.exec(key);
  if (bull) return /:[^:]*\.[^:]*$/.test(key) || /:\d+$/.test(key) ? `bullmq ${bull[1]} jobs` : `bullmq ${bull[1]} queue`;
  const sync = /^tvsync:sync:bench:(.*)$/.exec(key)?.[1] ?? '';
  if (sync.startsWith('cycle:')) return sync.endsWith(':results') ? 'cycle results' : 'cycle record (plan, report)';
  if (sync.startsWith('provisioning-log')) return sync.endsWith('by-email') ? 'provisioning log index' : 'provisioning log';
  if (sync.startsWith('written')) return 'written records';
  return sync ? sync.split(':')[0]! : 'other';
}

async function breakdown(redis: Redis): Promise<Record<string, number>> {
  const bytes = new Map<string, number>();
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'COUNT', 1000);
    cursor = next;
    const pipeline = redis.pipeline();
    for (const key of keys) pipeline.memory('USAGE', key, 'SAMPLES', '0');
    const replies = (await pipeline.exec()) ?? [];
    keys.forEach((key, i) => {
      const category = categoryOf(key);
      bytes.set(category, (bytes.get(category) ?? 0) + Number(replies[i]?.[1] ?? 0));
    });
  } while (cursor !== '0');
  return Object.fromEntries([...bytes].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, Number((v / MB).toFixed(1))]));
}

async function usedMemory(redis: Redis): Promise<{ used: number; peak: number }> {
  const info = await redis.info('memory');
  return { used: infoField(info, 'used_memory') ?? 0, peak: infoField(info, 'used_memory_peak') ?? 0 };
}

/**
 * A 100k-user initial cycle through the real queue and workers into the emulator, on a Redis of
 * its own: what the cycle leaves in Redis once it reported, and the most it held on the way.
 */
export async function benchRedisMemory() {
  const users = Number(process.env.BENCH_USERS ?? 100_000);
  const concurrency = 16;
  const server = await RedisServer.start();
  const emulator = await startEmulatorProcess(0);
  const dir = mkdtempSync(join(tmpdir(), 'tvsync-bench-'));
  writeFileExport(dir, {
    'users.json': JSON.stringify(Array.from({ length: users }, (_, i) => ({ id: `e${i}`, email: `user${i}@bench.example`, displayName: `User ${i}` }))),
  });
  const config = parseConfig(
    `redis: { url: "${server.url}", prefix: tvsync }
syncs:
  - name: bench
    source: { type: file, path: ${dir}, settle: 0s }
    target: { baseUrl: ${emulator.baseUrl}, token: "\${T}", requestsPerSecond: 20000, concurrency: ${concurrency}, tokenOwner: owner@bench.example }
`,
    { env: { T: BENCH_TOKEN } },
  );
  // The connection `tvsync run` gives its observability.
  const redis = connectRedis(server.url, 'producer');
  const log = pino({ level: process.env.BENCH_LOG ?? 'silent' });
  // As `tvsync run` wires it: the provisioning log is part of what a cycle leaves.
  const observability = new Observability(config, redis, log);
  const daemon = await Daemon.start(config, log, { scheduler: false, worker: true, runtime: { pollMs: 25 }, ...observability.hooks() });
  try {
    const before = await usedMemory(redis);
    await redis.config('RESETSTAT');
    const started = process.hrtime.bigint();
    const runtime = daemon.runtime('bench');
    const { requestedAt } = await requestCycle(runtime.queues.cycles, 'bench', 'once');
    const report = await waitForCycleReport(runtime.store, requestedAt, { timeoutMs: 1_200_000, pollMs: 100 });
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    if (!report || report.operations.createUser.applied !== users) throw new Error(`provisioning incomplete: ${JSON.stringify(report?.operations)}`);
    // Let the workers' last acknowledgements land before measuring.
    await new Promise((r) => setTimeout(r, 1000));
    const after = await usedMemory(redis);
    const leftMb = (after.used - before.used) / MB;
    const commands = infoField(await redis.info('stats'), 'total_commands_processed') ?? 0;
    const perCommand = [...(await redis.info('commandstats')).matchAll(/^cmdstat_(\S+):calls=(\d+)/gm)]
      .map(([, name, calls]) => [name!, Number((Number(calls) / users).toFixed(2))] as const)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 10);
    return {
      bench: `initial cycle of ${users.toLocaleString('en')} users at concurrency ${concurrency} into the emulator, on a Redis of its own`,
      cycleMs: Math.round(ms),
      leftMb: Number(leftMb.toFixed(1)),
      peakMb: Number(((after.peak - before.used) / MB).toFixed(1)),
      targetMb: TARGET_MB,
      targetMet: leftMb < TARGET_MB,
      redisCommandsPerUser: Number((commands / users).toFixed(1)),
      topCommandsPerUser: Object.fromEntries(perCommand),
      byKindMb: await breakdown(redis),
    };
  } finally {
    await daemon.stop();
    await redis.quit();
    await emulator.stop();
    await server.kill();
  }
}
