import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import type { Daemon } from '../../src/runtime/daemon.js';
import { closeQueues, cycleIdOf, openQueues, operationBatchSize } from '../../src/runtime/queues.js';
import { waitForCycleReport, requestCycle } from '../../src/runtime/trigger.js';
import { CycleStore } from '../../src/store/cycle-store.js';
import { until } from '../support/daemon-process.js';
import { runCycle, startWorker } from '../support/cycle.js';
import { OWNER, TOKEN, people, startEmulator, writeExport } from '../support/fixtures.js';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.js';

type Started = Awaited<ReturnType<typeof startEmulator>>;
let tv: Started;
const prefixes: string[] = [];
const daemons: Daemon[] = [];

beforeAll(async () => {
  tv = await startEmulator();
});
afterEach(async () => {
  await Promise.all(daemons.splice(0).map((d) => d.stop()));
});
afterAll(async () => {
  await tv.emulator.stop();
  await Promise.all(prefixes.map(dropPrefix));
});

function configFor(exportDir: string, prefix: string, requestsPerSecond: number) {
  return parseConfig(
    `redis: { url: "${REDIS_URL}", prefix: ${prefix} }
syncs:
  - name: corp
    source: { type: file, path: ${exportDir}, settle: 0s }
    target: { baseUrl: ${tv.baseUrl}, token: "\${T}", requestsPerSecond: ${requestsPerSecond}, concurrency: 4, tokenOwner: owner@corp.example }
    groups: { enabled: false }
`,
    { env: { T: TOKEN } },
  );
}

describe('operations several to a job', () => {
  it('batches only a long list, and cuts a list the same way every time', () => {
    const options = { opJobsPerCycle: 256, opBatchMax: 25 };
    expect(operationBatchSize(1, options)).toBe(1);
    expect(operationBatchSize(511, options)).toBe(1);
    expect(operationBatchSize(512, options)).toBe(2);
    expect(operationBatchSize(10_000, options)).toBe(25);
    expect(operationBatchSize(1_000_000, options)).toBe(25);
  });

  it('hold the rate limit per request, not per job', async () => {
    const prefix = testPrefix('batch-rate');
    prefixes.push(prefix);
    // 60 creates at 20 requests a second: six jobs of ten, which the limiter alone would start at once.
    const daemon = await startWorker(configFor(writeExport(people(60, 30_000)), prefix, 20), { opJobsPerCycle: 1, opBatchMax: 10 });
    daemons.push(daemon);
    tv.emulator.resetStats();
    const creates = () => tv.emulator.stats.byRoute['POST /Users'] ?? 0;
    const samples: { at: number; creates: number }[] = [];
    const sampler = setInterval(() => samples.push({ at: performance.now(), creates: creates() }), 20);
    let report: Awaited<ReturnType<typeof runCycle>>;
    try {
      report = await runCycle(daemon);
    } finally {
      clearInterval(sampler);
    }
    samples.push({ at: performance.now(), creates: creates() });
    expect(report.operations.createUser).toEqual({ planned: 60, applied: 60, failed: 0, cancelled: 0 });
    expect(creates()).toBe(60);
    const firstAt = samples.find((s) => s.creates > 0)?.at ?? 0;
    const lastAt = samples.find((s) => s.creates >= 60)?.at ?? 0;
    // Three windows of twenty at least: the last create comes two windows after the first.
    expect(lastAt - firstAt).toBeGreaterThan(1800);
    // Windows are fixed, so any one second may hold the end of one and the start of the next: 40 at most.
    for (const s of samples) {
      const second = samples.filter((t) => t.at >= s.at && t.at <= s.at + 1000);
      expect((second.at(-1)?.creates ?? 0) - s.creates).toBeLessThanOrEqual(40);
    }
  });

  it('hand back what they have not begun on shutdown; the next worker finishes them, creating nobody twice', async () => {
    const prefix = testPrefix('batch-shutdown');
    prefixes.push(prefix);
    const users = people(40, 31_000);
    const config = configFor(writeExport(users), prefix, 1000);
    const batching = { opJobsPerCycle: 1, opBatchMax: 10 };
    const redis = new Redis(REDIS_URL);
    const queues = openQueues('corp', redis, prefix);
    const store = new CycleStore(redis, prefix, 'corp');
    const created = () => tv.emulator.dump().users.filter((u) => u.userName !== OWNER && /^person31\d{3}@/.test(u.userName));
    tv.emulator.configure({ latencyMs: 100 });
    try {
      const first = await startWorker(config, batching);
      const { requestedAt } = await requestCycle(queues.cycles, 'corp', 'manual');
      await until(() => created().length >= 4, 30_000, 'the first operations to finish');
      await first.stop();
      const [cycleJob] = await queues.cycles.getDelayed();
      expect(cycleJob).toBeDefined();
      const done = await store.resultKeys(cycleIdOf(cycleJob!));
      // Four batches of ten were open: each stopped after the operation it was on.
      expect(done.size).toBeLessThan(20);
      expect(done.size).toBe(created().length);
      expect((await queues.operations.getJobCounts('delayed', 'waiting', 'active')).delayed).toBeGreaterThan(0);

      tv.emulator.configure({ latencyMs: 0 });
      tv.emulator.resetStats();
      const second = await startWorker(config, batching);
      daemons.push(second);
      const report = await waitForCycleReport(second.runtime('corp').store, requestedAt, { timeoutMs: 60_000, pollMs: 50 });
      expect(report?.operations.createUser).toEqual({ planned: 40, applied: 40, failed: 0, cancelled: 0 });
      expect(tv.emulator.stats.byRoute['POST /Users']).toBe(40 - done.size);
      expect(created()).toHaveLength(40);
      expect((await store.results(report!.cycleId)).filter((r) => r.adopted)).toEqual([]);
    } finally {
      tv.emulator.configure({ latencyMs: 0 });
      await closeQueues(queues);
      await redis.quit();
    }
  });
});
