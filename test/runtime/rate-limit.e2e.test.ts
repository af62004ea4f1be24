import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import type { Daemon } from '../../src/runtime/daemon.js';
import { RateLimitPauseStore } from '../../src/store/rate-limit-pause.js';
import { runCycle, startWorker } from '../support/cycle.js';
import { TOKEN, people, startEmulator, writeExport } from '../support/fixtures.js';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.js';

type Started = Awaited<ReturnType<typeof startEmulator>>;
let tv: Started;
let redis: Redis;
const prefixes: string[] = [];
const daemons: Daemon[] = [];

beforeAll(async () => {
  tv = await startEmulator();
  redis = new Redis(REDIS_URL);
});
afterEach(async () => {
  await Promise.all(daemons.splice(0).map((d) => d.stop()));
  tv.emulator.configure({ failureRate: 0, rateLimit: null });
});
afterAll(async () => {
  await tv.emulator.stop();
  await Promise.all(prefixes.map(dropPrefix));
  redis.disconnect();
});

function configFor(exportDir: string, prefix: string, extra = '') {
  return parseConfig(
    `redis: { url: "${REDIS_URL}", prefix: ${prefix} }
${extra}
syncs:
  - name: corp
    source: { type: file, path: ${exportDir}, settle: 0s }
    target: { baseUrl: ${tv.baseUrl}, token: "\${T}", requestsPerSecond: 1000, concurrency: 4, tokenOwner: owner@corp.example }
`,
    { env: { T: TOKEN } },
  );
}

function mine(from: number, n: number) {
  return tv.emulator.dump().users.filter((u) => {
    const m = /^person(\d+)@/.exec(u.userName);
    return m !== null && Number(m[1]) >= from && Number(m[1]) < from + n;
  });
}

describe('a 429 means nothing was written', () => {
  it('retries a rate-limited create as it was, without looking the user up first', async () => {
    const prefix = testPrefix('rl-plain');
    prefixes.push(prefix);
    const daemon = await startWorker(configFor(writeExport(people(60, 20_000)), prefix));
    daemons.push(daemon);
    tv.emulator.resetStats();
    tv.emulator.configure({ rateLimit: { max: 20, windowMs: 1000 } });
    const report = await runCycle(daemon);
    const seen = JSON.stringify({ stats: tv.emulator.stats, operations: report.operations.createUser });
    expect(report.outcome, seen).toBe('succeeded');
    expect(tv.emulator.stats.rateLimited, seen).toBeGreaterThan(0);
    // Every 429 proved nothing was written: not one look-up was needed.
    expect(tv.emulator.stats.filteredReads, seen).toBe(0);
    expect(mine(20_000, 60)).toHaveLength(60);
  });

  // Batches: each operation keeps its attempts, its maybe-applied mark and its recorded outcome within a job of several.
  it.each([
    ['a job per operation', 21_000, {}],
    ['ten operations per job', 24_000, { opJobsPerCycle: 1, opBatchMax: 10 }],
  ])('under a 429 storm with 5xx, looks up only after answers that may hide a write, and creates nobody twice (%s)', async (_, from, batching) => {
    const prefix = testPrefix('rl-storm');
    prefixes.push(prefix);
    const daemon = await startWorker(configFor(writeExport(people(60, from)), prefix), { opAttempts: 12, ...batching });
    daemons.push(daemon);
    tv.emulator.resetStats();
    tv.emulator.configure({ failureRate: 0.15, failureMode: 'mixed', rateLimit: { max: 20, windowMs: 1000 } });
    const reports = [await runCycle(daemon)];
    while (reports.length < 3 && reports.at(-1)?.outcome !== 'succeeded') reports.push(await runCycle(daemon));
    const stats = { ...tv.emulator.stats, byRoute: { ...tv.emulator.stats.byRoute } };
    tv.emulator.configure({ failureRate: 0, rateLimit: null });
    const seen = JSON.stringify({ stats, reports: reports.map((r) => [r.outcome, r.operations.createUser]) });
    expect(stats.rateLimited, seen).toBeGreaterThan(0);
    expect(stats.injectedFailures, seen).toBeGreaterThan(0);
    // A look-up follows only an injected failure (each may cost one look-up, itself perhaps failed
    // and repeated), never a 429: so far fewer look-ups than rate-limited answers.
    expect(stats.filteredReads, seen).toBeLessThanOrEqual(2 * stats.injectedFailures);
    expect(stats.requests, seen).toBeLessThan(60 * 4);
    const created = mine(from, 60);
    expect(created).toHaveLength(60);
    expect(new Set(created.map((u) => u.userName)).size).toBe(60);
  });
});

describe('bounded waits', () => {
  it('caps an absurd Retry-After, records the pause for status and metrics, and resumes once TeamViewer does', async () => {
    const prefix = testPrefix('rl-huge');
    prefixes.push(prefix);
    const pauses: { askedMs: number; appliedMs: number }[] = [];
    const config = configFor(writeExport(people(5, 22_000)), prefix, 'runtime: { maxRetryAfter: 2s }');
    const { Daemon } = await import('../../src/runtime/daemon.js');
    const { FAST } = await import('../support/runtime.js');
    const { silentLog } = await import('../support/fixtures.js');
    const daemon = await Daemon.start(config, silentLog, { scheduler: false, worker: true, runtime: { ...FAST }, onPause: (_sync, p) => pauses.push(p) });
    daemons.push(daemon);
    // A window of 11.6 days: the emulator answers Retry-After: 999999 once the read and one create have used it up.
    tv.emulator.configure({ rateLimit: { max: 2, windowMs: 999_999_000 } });
    const cycle = runCycle(daemon);
    const store = new RateLimitPauseStore(redis, prefix, 'corp');
    let pause = await store.current(Date.now());
    for (let i = 0; i < 100 && !pause; i++) {
      await new Promise((r) => setTimeout(r, 50));
      pause = await store.current(Date.now());
    }
    expect(pause).toBeDefined();
    expect(pause!.askedMs).toBeGreaterThan(999_000_000);
    expect(pause!.appliedMs).toBe(2000);
    // BullMQ's limiter key, which survives restarts, expires within the cap, not in 11 days.
    const ttl = await redis.pttl(`${prefix}:operations-corp:limiter`);
    expect(ttl).toBeLessThanOrEqual(2000);
    expect(pauses[0]).toMatchObject({ appliedMs: 2000 });
    tv.emulator.configure({ rateLimit: null });
    const report = await cycle;
    expect(report.outcome).toBe('succeeded');
    expect(mine(22_000, 5)).toHaveLength(5);
  });
});
