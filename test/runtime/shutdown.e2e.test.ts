import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/observe/log.js';
import { CycleStore } from '../../src/store/cycle-store.js';
import { Daemon } from '../../src/runtime/daemon.js';
import { closeQueues, openQueues } from '../../src/runtime/queues.js';
import { requestCycle, waitForCycleReport } from '../../src/runtime/trigger.js';
import { until } from '../support/daemon-process.js';
import { OWNER, TOKEN, people, startEmulator, writeExport } from '../support/fixtures.js';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.js';
import { FAST } from '../support/runtime.js';

const prefixes: string[] = [];
afterAll(async () => {
  await Promise.all(prefixes.map(dropPrefix));
});

describe('stopping a worker while a cycle waits for its operations', () => {
  it('returns well within the grace time, and the cycle is handed back and resumes elsewhere', async () => {
    const prefix = testPrefix('shutdown');
    prefixes.push(prefix);
    const users = people(60, 50_000);
    // Two at a time, 800 ms each: the operations take about 24 s, longer than the grace time.
    const tv = await startEmulator({ latencyMs: 800 });
    const config = parseConfig(
      `redis: { url: "${REDIS_URL}", prefix: ${prefix} }
syncs:
  - name: corp
    source: { type: file, path: ${writeExport(users)} }
    target: { baseUrl: ${tv.baseUrl}, token: "\${T}", requestsPerSecond: 1000, concurrency: 2 }
    groups: { enabled: false }
`,
      { env: { T: TOKEN } },
    );
    const lines: string[] = [];
    const log = createLogger({ level: 'info', destination: { write: (line: string) => void lines.push(line) } });
    const graceMs = 20_000;
    const redis = new Redis(REDIS_URL);
    const queues = openQueues('corp', redis, prefix);
    const created = () => tv.emulator.dump().users.filter((u) => u.userName !== OWNER);
    try {
      const first = await Daemon.start(config, log, { scheduler: false, worker: true, runtime: { ...FAST, shutdownGraceMs: graceMs } });
      const { requestedAt } = await requestCycle(queues.cycles, 'corp', 'manual');
      await until(() => created().length >= 2, 30_000, 'the operations to start');

      const stopping = Date.now();
      await first.stop();
      const tookMs = Date.now() - stopping;
      // Only the two operations in flight are waited for, not the cycle's remaining 20-odd seconds.
      expect(tookMs).toBeLessThan(graceMs / 2);
      expect(lines.filter((l) => l.includes('did not finish in time'))).toEqual([]);
      expect(await queues.cycles.getJobCounts('active', 'delayed', 'waiting')).toMatchObject({ active: 0, delayed: 1 });
      expect(created().length).toBeLessThan(users.length);

      tv.emulator.configure({ latencyMs: 0 });
      const second = await Daemon.start(config, log, { scheduler: false, worker: true, runtime: FAST });
      try {
        const report = await waitForCycleReport(second.runtime('corp').store, requestedAt, { timeoutMs: 60_000, pollMs: 50 });
        expect(report?.outcome).toBe('succeeded');
        expect(report?.operations.createUser).toEqual({ planned: 60, applied: 60, failed: 0, cancelled: 0 });
        expect(lines.some((l) => l.includes('resuming a cycle whose worker stopped after planning'))).toBe(true);
        expect(new Set(created().map((u) => u.userName))).toEqual(new Set(users.map((u) => u.email)));
        expect(created()).toHaveLength(60);
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

describe('stopping a worker while its cycle is still reading', () => {
  it('ends the read at once and hands the cycle back, unreported, for another worker to plan', async () => {
    const prefix = testPrefix('shutdown-read');
    prefixes.push(prefix);
    const users = people(5, 51_000);
    // TeamViewer takes 30 s to answer the user list: the cycle is stuck reading when the stop comes.
    const tv = await startEmulator({ latencyMs: 30_000 });
    const config = parseConfig(
      `redis: { url: "${REDIS_URL}", prefix: ${prefix} }
syncs:
  - name: corp
    source: { type: file, path: ${writeExport(users)}, settle: 0s }
    target: { baseUrl: ${tv.baseUrl}, token: "\${T}", requestsPerSecond: 1000, concurrency: 2, tokenOwner: ${OWNER}, timeout: 60s }
    groups: { enabled: false }
`,
      { env: { T: TOKEN } },
    );
    const log = createLogger({ level: 'silent', destination: { write: () => undefined } });
    const graceMs = 20_000;
    const redis = new Redis(REDIS_URL);
    const queues = openQueues('corp', redis, prefix);
    try {
      const first = await Daemon.start(config, log, { scheduler: false, worker: true, runtime: { ...FAST, shutdownGraceMs: graceMs } });
      const { requestedAt } = await requestCycle(queues.cycles, 'corp', 'manual');
      await until(async () => (await queues.cycles.getJobCounts('active')).active === 1, 10_000, 'the cycle to start');
      await new Promise((r) => setTimeout(r, 300));
      const stopping = Date.now();
      await first.stop();
      expect(Date.now() - stopping).toBeLessThan(graceMs / 2);
      expect(await queues.cycles.getJobCounts('active', 'delayed')).toMatchObject({ active: 0, delayed: 1 });
      // Handed back, not failed: no report was written for it.
      expect(await new CycleStore(redis, prefix, 'corp').reports(5)).toEqual([]);

      tv.emulator.configure({ latencyMs: 0 });
      const second = await Daemon.start(config, log, { scheduler: false, worker: true, runtime: FAST });
      try {
        const report = await waitForCycleReport(second.runtime('corp').store, requestedAt, { timeoutMs: 60_000, pollMs: 50 });
        expect(report?.outcome).toBe('succeeded');
        expect(report?.operations.createUser.applied).toBe(5);
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
