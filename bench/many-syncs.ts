import pino from 'pino';
import { Daemon } from '../src/runtime/daemon.js';
import { requestCycle, waitForCycleReport } from '../src/runtime/trigger.js';
import type { CycleReport } from '../src/plan/report.js';
import { RedisServer } from '../test/support/redis-server.js';
import { tenantsConfig } from '../test/support/many-syncs.js';
import { BENCH_TOKEN } from './emulator-process.js';
import { startEmulatorFleet } from './emulator-fleet.js';

const TENANTS = Number(process.env.TVSYNC_BENCH_TENANTS ?? 200);
const USERS_EACH = 5;

function memory(): { rssMb: number; heapMb: number } {
  (globalThis as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  return { rssMb: Math.round(m.rss / 1048576), heapMb: Math.round(m.heapUsed / 1048576) };
}

async function clients(redis: RedisServer): Promise<number> {
  return (
    String(await redis.command('CLIENT', 'LIST'))
      .trim()
      .split('\n').length - 1
  );
}

async function commandsProcessed(redis: RedisServer): Promise<number> {
  const info = String(await redis.command('INFO', 'stats'));
  return Number(/total_commands_processed:(\d+)/.exec(info)?.[1] ?? 0);
}

/** One daemon with `baseUrls.length` tenants: start, a cycle of each, liveness; memory and Redis figures. */
async function runTenants(redis: RedisServer, baseUrls: string[], prefix: string) {
  const config = tenantsConfig(baseUrls, { redisUrl: redis.url, prefix, token: BENCH_TOKEN, usersEach: USERS_EACH });
  const before = { memory: memory(), clients: await clients(redis) };
  let started = performance.now();
  const daemon = await Daemon.start(config, pino({ level: process.env.BENCH_LOG ?? 'silent' }), { scheduler: true, worker: true });
  try {
    const startMs = performance.now() - started;
    const afterStart = { memory: memory(), clients: (await clients(redis)) - before.clients };
    started = performance.now();
    // The first scheduled cycle of each tenant is due at once; waiting for it is the whole point.
    const reports = await Promise.all([...daemon.syncs.values()].map((runtime) => waitForCycleReport(runtime.store, 0, { timeoutMs: 600_000, pollMs: 200 })));
    const cyclesMs = performance.now() - started;
    const done = reports.filter((r): r is CycleReport => r?.outcome === 'succeeded' && r.operations.createUser.applied === USERS_EACH).length;
    // A manual cycle each on top: a steady cycle (nothing to write) for every tenant at once.
    started = performance.now();
    const asked = await Promise.all([...daemon.syncs.values()].map((r) => requestCycle(r.queues.cycles, r.sync.name, 'manual')));
    await Promise.all([...daemon.syncs.values()].map((r, i) => waitForCycleReport(r.store, asked[i]!.requestedAt, { timeoutMs: 600_000, pollMs: 200 })));
    const steadyMs = performance.now() - started;
    const afterCycles = memory();
    const commands = await commandsProcessed(redis);
    started = performance.now();
    const live = await daemon.live();
    const liveMs = performance.now() - started;
    const liveCommands = (await commandsProcessed(redis)) - commands - 1;
    return { startMs, afterStart, cyclesMs, done, steadyMs, afterCycles, live: live.live, liveMs, liveCommands, baseline: before.memory };
  } finally {
    await daemon.stop();
  }
}

/**
 * 200 tenants (an MSP's TeamViewer companies, one emulator each in a process of their own) in one
 * tvsync process on a redis-server of its own: memory after start and after a cycle of each, Redis
 * connections, cycle completion, the cost of one liveness judgement. One tenant first, as the baseline.
 */
export async function benchManySyncs() {
  const redis = await RedisServer.start();
  const fleet = await startEmulatorFleet(TENANTS + 1);
  try {
    const one = await runTenants(redis, fleet.baseUrls.slice(0, 1), 'one');
    const many = await runTenants(redis, fleet.baseUrls.slice(1), 'many');
    const perTenant = (a: number, b: number) => Math.round(((a - b) / (TENANTS - 1)) * 100) / 100;
    return {
      bench: `${TENANTS} file-source tenants (${USERS_EACH} users each, fast lane on) in one process, scheduler and workers`,
      tenants: TENANTS,
      cyclesSucceeded: many.done,
      allCyclesDone: many.done === TENANTS,
      live: many.live && one.live,
      redisConnections: many.afterStart.clients,
      redisConnectionsOneTenant: one.afterStart.clients,
      redisConnectionsPerTenant: perTenant(many.afterStart.clients, one.afterStart.clients),
      baselineRssMb: one.baseline.rssMb,
      rssAfterStartMb: many.afterStart.memory.rssMb,
      rssAfterCyclesMb: many.afterCycles.rssMb,
      heapAfterStartMb: many.afterStart.memory.heapMb,
      heapAfterCyclesMb: many.afterCycles.heapMb,
      oneTenantRssAfterCyclesMb: one.afterCycles.rssMb,
      oneTenantHeapAfterCyclesMb: one.afterCycles.heapMb,
      heapPerTenantMb: perTenant(many.afterCycles.heapMb, one.afterCycles.heapMb),
      rssPerTenantMb: perTenant(many.afterCycles.rssMb, one.afterCycles.rssMb),
      startMs: Math.round(many.startMs),
      firstCyclesMs: Math.round(many.cyclesMs),
      steadyCyclesMs: Math.round(many.steadyMs),
      livenessJudgementMs: Math.round(many.liveMs),
      livenessRedisCommands: many.liveCommands,
    };
  } finally {
    await fleet.stop();
    await redis.kill();
  }
}
