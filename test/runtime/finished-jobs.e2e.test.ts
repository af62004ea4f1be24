import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/observe/log.js';
import { operationKey } from '../../src/plan/report.js';
import { Daemon } from '../../src/runtime/daemon.js';
import type { OperationJobData } from '../../src/runtime/operation-worker.js';
import { closeQueues, cycleIdOf, openQueues, operationJobId } from '../../src/runtime/queues.js';
import { requestCycle, waitForCycleReport } from '../../src/runtime/trigger.js';
import { CycleStore } from '../../src/store/cycle-store.js';
import { syncKeys } from '../../src/store/keys.js';
import { until } from '../support/daemon-process.js';
import { OWNER, TOKEN, people, startEmulator, writeExport } from '../support/fixtures.js';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.js';
import { FAST } from '../support/runtime.js';

const prefixes: string[] = [];
afterAll(async () => {
  await Promise.all(prefixes.map(dropPrefix));
});

function configFor(prefix: string, exportDir: string, baseUrl: string) {
  return parseConfig(
    `redis: { url: "${REDIS_URL}", prefix: ${prefix} }
syncs:
  - name: corp
    source: { type: file, path: ${exportDir} }
    target: { baseUrl: ${baseUrl}, token: "\${T}", requestsPerSecond: 1000, concurrency: 2 }
    groups: { enabled: false }
`,
    { env: { T: TOKEN } },
  );
}

/** Every key under the prefix whose name matches. */
async function keysLike(redis: Redis, pattern: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    found.push(...keys);
  } while (cursor !== '0');
  return found;
}

const silent = createLogger({ level: 'silent' });

describe('what a cycle leaves in Redis', () => {
  it('no finished operation job, and the outcomes folded into the cycle record, all still readable', async () => {
    const prefix = testPrefix('finished-jobs');
    prefixes.push(prefix);
    const users = people(30, 61_000);
    const tv = await startEmulator();
    const redis = new Redis(REDIS_URL);
    const daemon = await Daemon.start(configFor(prefix, writeExport(users), tv.baseUrl), silent, { scheduler: false, worker: true, runtime: FAST });
    try {
      const runtime = daemon.runtime('corp');
      const { requestedAt } = await requestCycle(runtime.queues.cycles, 'corp', 'manual');
      const report = await waitForCycleReport(runtime.store, requestedAt, { timeoutMs: 30_000, pollMs: 50 });
      expect(report?.operations.createUser).toEqual({ planned: 30, applied: 30, failed: 0, cancelled: 0 });
      const cycleId = report!.cycleId;

      expect(await runtime.queues.operations.getJobCounts('completed', 'failed', 'waiting', 'active', 'delayed')).toEqual({
        completed: 0,
        failed: 0,
        waiting: 0,
        active: 0,
        delayed: 0,
      });
      // No job hash of any of the cycle's operations is left.
      expect(await keysLike(redis, `${prefix}:operations-corp:${cycleId}.*`)).toEqual([]);
      const keys = syncKeys(prefix, 'corp');
      expect(await redis.exists(keys.cycleResults(cycleId))).toBe(0);
      // One record per cycle: status, trigger, start, plan, directory groups, report and the folded outcomes.
      expect((await redis.hkeys(keys.cycle(cycleId))).sort()).toEqual(['directoryGroups', 'plan', 'report', 'results', 'startedAtMs', 'status', 'trigger']);
      expect(await redis.ttl(keys.cycle(cycleId))).toBeGreaterThan(0);

      const results = await runtime.store.results(cycleId);
      expect(results).toHaveLength(30);
      expect(new Set(results.map((r) => r.email))).toEqual(new Set(users.map((u) => u.email)));
      expect(results.every((r) => r.status === 'applied' && r.tvUserId !== undefined)).toBe(true);
      const stored = await runtime.store.load(cycleId);
      expect(stored?.plan?.operations).toHaveLength(30);
    } finally {
      await daemon.stop();
      await redis.quit();
      await tv.emulator.stop();
    }
  });
});

describe('a resumed cycle with finished jobs removed', () => {
  it('never creates a user twice, also when it re-adds an operation whose job finished after it read the outcomes', async () => {
    const prefix = testPrefix('finished-resume');
    prefixes.push(prefix);
    const users = people(40, 62_000);
    const tv = await startEmulator({ latencyMs: 150 });
    const config = configFor(prefix, writeExport(users), tv.baseUrl);
    const redis = new Redis(REDIS_URL);
    const queues = openQueues('corp', redis, prefix);
    const store = new CycleStore(redis, prefix, 'corp');
    const created = () => tv.emulator.dump().users.filter((u) => u.userName !== OWNER);
    try {
      const first = await Daemon.start(config, silent, { scheduler: false, worker: true, runtime: FAST });
      const { requestedAt } = await requestCycle(queues.cycles, 'corp', 'manual');
      await until(() => created().length >= 6, 30_000, 'the first operations to finish');
      // Stopped mid-cycle: the cycle is handed back, the operations in flight finish and their jobs go.
      await first.stop();

      const [cycleJob] = await queues.cycles.getDelayed();
      expect(cycleJob).toBeDefined();
      const cycleId = cycleIdOf(cycleJob!);
      const plan = (await store.load(cycleId))?.plan;
      expect(plan?.operations).toHaveLength(40);
      const done = await store.resultKeys(cycleId);
      expect(done.size).toBeGreaterThanOrEqual(6);
      expect(done.size).toBeLessThan(40);
      for (const key of done) expect(await queues.operations.getJob(operationJobId(cycleId, key))).toBeUndefined();

      // A resuming cycle that read the outcomes just before these operations finished re-adds them
      // all, as it does: marked, under the same ids. Their jobs are gone, so each is a new job.
      await queues.operations.addBulk(
        plan!.operations.map((op) => {
          const key = operationKey(op);
          return {
            name: op.kind,
            data: { cycleId, key, op, resumed: true } satisfies OperationJobData,
            opts: { jobId: operationJobId(cycleId, key), attempts: 3, removeOnComplete: true },
          };
        }),
      );

      tv.emulator.configure({ latencyMs: 0 });
      tv.emulator.resetStats();
      const second = await Daemon.start(config, silent, { scheduler: false, worker: true, runtime: FAST });
      try {
        const report = await waitForCycleReport(second.runtime('corp').store, requestedAt, { timeoutMs: 60_000, pollMs: 50 });
        expect(report?.operations.createUser).toEqual({ planned: 40, applied: 40, failed: 0, cancelled: 0 });
        // Only the operations without an outcome were sent: no create twice, none met as a conflict and adopted.
        expect(tv.emulator.stats.byRoute['POST /Users']).toBe(40 - done.size);
        const results = await second.runtime('corp').store.results(cycleId);
        expect(results).toHaveLength(40);
        expect(results.filter((r) => r.adopted)).toEqual([]);
        expect(new Set(created().map((u) => u.userName))).toEqual(new Set(users.map((u) => u.email)));
        expect(created()).toHaveLength(40);
        expect(await queues.operations.getJobCounts('completed', 'waiting', 'active', 'delayed')).toEqual({ completed: 0, waiting: 0, active: 0, delayed: 0 });
      } finally {
        await second.stop();
      }
    } finally {
      await closeQueues(queues);
      await redis.quit();
      await tv.emulator.stop();
    }
  });
});
