import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CycleStore } from '../../src/store/cycle-store.js';
import { closeQueues, openQueues } from '../../src/runtime/queues.js';
import { requestCycle, waitForCycleReport } from '../../src/runtime/trigger.js';
import { spawnDaemon, exited, until } from '../support/daemon-process.js';
import { TOKEN, people, startEmulator, writeConfig, writeExport } from '../support/fixtures.js';
import { startLyingTeamViewer } from '../support/lying-teamviewer.js';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.js';

type Started = Awaited<ReturnType<typeof startEmulator>>;
let tv: Started;
let redis: Redis;
const prefixes: string[] = [];
const env = { TVSYNC_TEST_TOKEN: TOKEN };
const FAST_RUNTIME = `runtime: { lockDuration: 3s, stalledInterval: 1s, operationBackoff: 100ms, readBackoff: 100ms, shutdownGrace: 5s }\n`;

beforeAll(async () => {
  tv = await startEmulator();
  redis = new Redis(REDIS_URL);
});
afterAll(async () => {
  await tv.emulator.stop();
  await redis.quit();
  await Promise.all(prefixes.map(dropPrefix));
});

function mine(from: number, to: number) {
  return tv.emulator.dump().users.filter((u) => {
    const n = Number(/^person(\d+)@/.exec(u.userName)?.[1] ?? -1);
    return n >= from && n < to;
  });
}

/**
 * Starts a worker, asks for a cycle of the users numbered [from, to), and kills the worker as a
 * crash would (SIGKILL) once at least `atLeast` of them exist. Returns the cycle's request time and
 * how many users were created before the kill.
 */
async function killMidCycle(config: string, queues: ReturnType<typeof openQueues>, [from, to]: [number, number], atLeast: number) {
  const first = spawnDaemon(['--role', 'worker', '--config', config], env);
  const { requestedAt } = await requestCycle(queues.cycles, 'corp');
  await until(() => mine(from, to).length >= atLeast, 60_000, 'the first worker to create users');
  first.kill('SIGKILL');
  await exited(first);
  const createdBeforeKill = mine(from, to).length;
  expect(createdBeforeKill).toBeLessThan(to - from);
  return { requestedAt, createdBeforeKill };
}

/** A config for these users with the given target tuning and short stall times. */
function configWith(users: ReturnType<typeof people>, prefix: string, targetTuning: string, syncExtra = '') {
  const path = writeConfig({ exportDir: writeExport(users), baseUrl: tv.baseUrl, prefix });
  const text = readFileSync(path, 'utf8').replace('requestsPerSecond: 500\n      concurrency: 8\n', targetTuning).replace('log:\n', `${FAST_RUNTIME}log:\n`);
  writeFileSync(path, text + syncExtra);
  return path;
}

describe('crash safety', () => {
  it('a worker killed with SIGKILL mid-cycle, then another started, ends as a clean run would', async () => {
    const prefix = testPrefix('crash');
    prefixes.push(prefix);
    const users = people(400, 20_000);
    const config = configWith(users, prefix, 'requestsPerSecond: 400\n      concurrency: 4\n');
    tv.emulator.configure({ latencyMs: 15 });
    const queues = openQueues('corp', redis, prefix);
    try {
      const { requestedAt } = await killMidCycle(config, queues, [20_000, 20_400], 120);

      const second = spawnDaemon(['--role', 'worker', '--config', config], env);
      try {
        const report = await waitForCycleReport(new CycleStore(redis, prefix, 'corp'), requestedAt, { timeoutMs: 90_000 });
        expect(report, second.output()).toBeDefined();
        const created = mine(20_000, 20_400);
        expect(created).toHaveLength(400);
        expect(new Set(created.map((u) => u.userName)).size).toBe(400);
        expect(created.every((u) => u.active && u.displayName === `Person ${u.userName.slice(6, 11)}`)).toBe(true);
        // Every operation has exactly one outcome, and a clean follow-up cycle has nothing to do.
        expect(report!.operations.createUser.planned).toBe(400);
        expect(report!.operations.createUser.applied).toBe(400);
        const { requestedAt: again } = await requestCycle(queues.cycles, 'corp');
        const followUp = await waitForCycleReport(new CycleStore(redis, prefix, 'corp'), again, { timeoutMs: 60_000 });
        expect(followUp?.summary?.unchanged).toBe(400);
        expect(followUp?.outcome).toBe('succeeded');
      } finally {
        second.kill('SIGTERM');
        expect(await exited(second)).toBe(0);
      }
    } finally {
      tv.emulator.configure({ latencyMs: 0 });
      await closeQueues(queues);
    }
  });

  it('a worker killed with SIGKILL in the middle of batch jobs: the next one creates nobody twice', async () => {
    const prefix = testPrefix('crash-batch');
    prefixes.push(prefix);
    // 1,200 operations go four to a job (operationBatchSize): the kill lands inside several batches.
    const users = people(1200, 40_000);
    const config = configWith(users, prefix, 'requestsPerSecond: 1000\n      concurrency: 4\n');
    tv.emulator.configure({ latencyMs: 15 });
    const queues = openQueues('corp', redis, prefix);
    try {
      const { requestedAt, createdBeforeKill } = await killMidCycle(config, queues, [40_000, 41_200], 300);

      tv.emulator.resetStats();
      const second = spawnDaemon(['--role', 'worker', '--config', config], env);
      try {
        const store = new CycleStore(redis, prefix, 'corp');
        const report = await waitForCycleReport(store, requestedAt, { timeoutMs: 120_000 });
        expect(report, second.output()).toBeDefined();
        const created = mine(40_000, 41_200);
        expect(created).toHaveLength(1200);
        expect(new Set(created.map((u) => u.userName)).size).toBe(1200);
        expect(report!.operations.createUser).toEqual({ planned: 1200, applied: 1200, failed: 0, cancelled: 0 });
        // A create the killed worker sent is found by the look-up its batch makes first, never sent again and refused.
        const results = await store.results(report!.cycleId);
        expect(results.filter((r) => /already in the company/.test(r.message))).toEqual([]);
        expect(tv.emulator.stats.byRoute['POST /Users']).toBeLessThanOrEqual(1200 - createdBeforeKill);
      } finally {
        second.kill('SIGTERM');
        expect(await exited(second)).toBe(0);
      }
    } finally {
      tv.emulator.configure({ latencyMs: 0 });
      await closeQueues(queues);
    }
  });
});

describe('two daemons on one Redis', () => {
  it('never run two cycles of one sync at once, and three presses during a cycle give one follow-up', async () => {
    const prefix = testPrefix('two');
    prefixes.push(prefix);
    const users = people(240, 30_000);
    const config = configWith(users, prefix, 'requestsPerSecond: 400\n      concurrency: 2\n', '    schedule: { every: 1h }\n');
    tv.emulator.configure({ latencyMs: 20 });
    const store = new CycleStore(redis, prefix, 'corp');
    const queues = openQueues('corp', redis, prefix);
    const a = spawnDaemon(['--config', config], env);
    const b = spawnDaemon(['--config', config], env);
    try {
      // The new scheduler runs its first cycle at once: the initial provisioning, a few seconds long.
      await until(async () => (await queues.cycles.getActiveCount()) === 1 && mine(30_000, 30_240).length > 20, 60_000, 'the first cycle to run');
      for (let i = 0; i < 3; i++) await requestCycle(queues.cycles, 'corp');
      await until(async () => (await store.reports()).length >= 2, 90_000, 'the follow-up cycle');
      // Give a wrongly extra cycle time to show up.
      await new Promise((r) => setTimeout(r, 3000));
      const reports = await store.reports();
      expect(reports.map((r) => r.trigger).sort()).toEqual(['manual', 'schedule']);
      const spans = reports.map((r) => [Date.parse(r.startedAt), Date.parse(r.finishedAt)] as const).sort((x, y) => x[0] - y[0]);
      for (let i = 1; i < spans.length; i++) expect(spans[i]![0]).toBeGreaterThanOrEqual(spans[i - 1]![1]);
      expect(mine(30_000, 30_240)).toHaveLength(240);
    } finally {
      tv.emulator.configure({ latencyMs: 0 });
      a.kill('SIGTERM');
      b.kill('SIGTERM');
      await Promise.all([exited(a), exited(b)]);
      await closeQueues(queues);
    }
  });
});

describe('SIGTERM while a TeamViewer answer trickles in', () => {
  it('a read: the cycle’s abort signal ends it, and the process exits within the grace time', async () => {
    const prefix = testPrefix('trickle');
    prefixes.push(prefix);
    // Answers every request with a body of one byte a second, for ever: no idle timeout ever fires.
    const open = new Set<ServerResponse>();
    let requests = 0;
    const trickle = createServer((req, res) => {
      requests++;
      req.resume();
      res.writeHead(200, { 'content-type': 'application/scim+json' });
      open.add(res);
      const timer = setInterval(() => res.write(' '), 1000);
      res.on('close', () => {
        clearInterval(timer);
        open.delete(res);
      });
    });
    await new Promise<void>((resolve) => trickle.listen(0, '127.0.0.1', resolve));
    const baseUrl = `http://127.0.0.1:${(trickle.address() as AddressInfo).port}/scim/v2`;
    const path = writeConfig({ exportDir: writeExport(people(3, 60_000)), baseUrl, prefix });
    const text = readFileSync(path, 'utf8')
      .replace('concurrency: 8\n', 'concurrency: 8\n      timeout: 10m\n')
      .replace('log:\n', 'runtime: { shutdownGrace: 2s }\nhttp: { host: 127.0.0.1, port: 0 }\nlog:\n');
    writeFileSync(path, text);
    const daemon = spawnDaemon(['--config', path], env);
    try {
      // The scheduler's first cycle starts at once and reads TeamViewer.
      await until(() => requests > 0, 30_000, 'a request to the trickling TeamViewer');
      await new Promise((r) => setTimeout(r, 1000));
      const signalled = Date.now();
      daemon.kill('SIGTERM');
      const code = await Promise.race([exited(daemon), new Promise<'still running'>((r) => setTimeout(() => r('still running'), 20_000))]);
      expect(code, daemon.output()).toBe(0);
      // Grace 2 s, plus the 5 s the process allows itself past it, plus start-up slack.
      expect(Date.now() - signalled).toBeLessThan(2000 + 5000 + 3000);
      // The read took the abort: nothing was left for the hard exit.
      expect(daemon.output()).not.toContain('shutdown did not finish in time');
    } finally {
      daemon.kill('SIGKILL');
      for (const res of open) res.destroy();
      await new Promise<void>((resolve) => trickle.close(() => resolve()));
    }
  });

  it('a write: running operations get the grace time, then the process exits all the same', async () => {
    const prefix = testPrefix('trickle-write');
    prefixes.push(prefix);
    const tv = await startEmulator();
    const liar = await startLyingTeamViewer(tv.baseUrl);
    // Reads are answered; every create trickles for ever.
    liar.rule = ({ method }) => (method === 'POST' ? 'trickle' : undefined);
    const path = writeConfig({ exportDir: writeExport(people(3, 61_000)), baseUrl: liar.baseUrl, prefix });
    const text = readFileSync(path, 'utf8')
      .replace('concurrency: 8\n', 'concurrency: 8\n      timeout: 10m\n')
      .replace('log:\n', 'runtime: { shutdownGrace: 2s }\nhttp: { host: 127.0.0.1, port: 0 }\nlog:\n');
    writeFileSync(path, text);
    const daemon = spawnDaemon(['--config', path], env);
    try {
      await until(() => tv.emulator.stats.requests > 0, 30_000, 'the cycle to read TeamViewer');
      await new Promise((r) => setTimeout(r, 2000));
      const signalled = Date.now();
      daemon.kill('SIGTERM');
      const code = await Promise.race([exited(daemon), new Promise<'still running'>((r) => setTimeout(() => r('still running'), 20_000))]);
      expect(code, daemon.output()).toBe(0);
      expect(Date.now() - signalled).toBeLessThan(2000 + 5000 + 3000);
      expect(daemon.output()).toContain('shutdown did not finish in time');
    } finally {
      daemon.kill('SIGKILL');
      await liar.close();
      await tv.emulator.stop();
    }
  });
});
