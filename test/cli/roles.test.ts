import { readFileSync, writeFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CycleStore } from '../../src/store/cycle-store.js';
import { runCli } from '../support/cli.js';
import { exited, spawnDaemon, until } from '../support/daemon-process.js';
import { TOKEN, people, startEmulator, writeConfig, writeExport } from '../support/fixtures.js';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.js';

type Started = Awaited<ReturnType<typeof startEmulator>>;
let tv: Started;
let redis: Redis;
const prefix = testPrefix('cli-roles');
const env = { TVSYNC_TEST_TOKEN: TOKEN };

beforeAll(async () => {
  tv = await startEmulator();
  redis = new Redis(REDIS_URL);
});
afterAll(async () => {
  await tv.emulator.stop();
  await redis.quit();
  await dropPrefix(prefix);
});

describe('tvsync run --role', () => {
  it('a worker-only process runs the cycle a scheduler-only process scheduled, and its operations', async () => {
    const path = writeConfig({ exportDir: writeExport(people(4, 94_000)), baseUrl: tv.baseUrl, prefix, extra: '    schedule: { every: 10s }\n' });
    writeFileSync(path, readFileSync(path, 'utf8').replace('log:\n  level: warn', 'http: { host: 127.0.0.1, port: 0 }\nlog:\n  level: info'));
    const store = new CycleStore(redis, prefix, 'corp');

    const scheduler = spawnDaemon(['--config', path, '--role', 'scheduler'], env);
    const processes = [scheduler];
    try {
      await until(() => scheduler.output().includes('tvsync running'), 30_000, 'the scheduler to start').catch((err: unknown) => {
        throw new Error(`${String(err)}: ${scheduler.output()}`);
      });
      // No worker yet: nothing runs, and sync-now says why instead of queueing a cycle nobody takes.
      const refused = await runCli(['sync-now', '--config', path], env);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain('no tvsync worker of sync corp was seen');
      expect(await store.reports()).toEqual([]);

      const worker = spawnDaemon(['--config', path, '--role', 'worker'], env);
      processes.push(worker);
      await until(async () => (await store.reports()).some((r) => r.trigger === 'schedule'), 60_000, 'a scheduled cycle to finish');
      const report = (await store.reports()).find((r) => r.trigger === 'schedule');
      // Its id says when it was due.
      expect(report?.cycleId).toMatch(/^\d{8}T\d{6}-scheduled$/);
      expect(report?.outcome).toBe('succeeded');
      expect(report?.operations.createUser).toMatchObject({ planned: 4, applied: 4 });
      expect(tv.emulator.dump().users.filter((u) => /^person9400\d@/.test(u.userName))).toHaveLength(4);
      expect(worker.output()).toContain('"role":"worker"');
      expect(scheduler.output()).toContain('"role":"scheduler"');
    } finally {
      for (const child of processes) child.kill('SIGTERM');
      const codes = await Promise.all(processes.map(exited));
      expect(codes).toEqual(processes.map(() => 0));
    }
  });
});
