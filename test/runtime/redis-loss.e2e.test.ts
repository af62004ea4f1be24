import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/observe/log.js';
import { Daemon } from '../../src/runtime/daemon.js';
import { Observability } from '../../src/runtime/observability.js';
import { schedulerId } from '../../src/runtime/queues.js';
import type { CycleReport } from '../../src/plan/report.js';
import { until } from '../support/daemon-process.js';
import { OWNER, TOKEN, people, startEmulator, writeExport } from '../support/fixtures.js';
import { NO_REDIS_SERVER, RedisServer, haveRedisServer } from '../support/redis-server.js';
import { FAST } from '../support/runtime.js';

const USERS = people(60, 40_000);
const GROUP = { id: 'g-loss', name: 'Loss Team', members: USERS.slice(0, 10).map((u) => u.id) };
const TRIGGER_TOKEN = 'trigger-token-0123456789-abcdef';
const LOST = /^Redis lost its data during this cycle; (\d+) operations have no recorded outcome; the next cycle plans again$/;

interface Running {
  redis: RedisServer;
  tv: Awaited<ReturnType<typeof startEmulator>>;
  daemon: Daemon;
  observability: Observability;
  base: string;
  lines: string[];
}
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  vi.restoreAllMocks();
});

/** A daemon (scheduler and worker) on a redis-server of its own, whose first cycle provisions USERS slowly. */
async function start(stateCheckMs: number, redisArgs: string[] = [], httpBlock = 'http: { host: 127.0.0.1, port: 0 }'): Promise<Running> {
  const redis = await RedisServer.start({ args: redisArgs });
  cleanups.push(() => redis.kill());
  const tv = await startEmulator({ latencyMs: 60 });
  cleanups.push(() => tv.emulator.stop());
  const config = parseConfig(
    `redis: { url: "${redis.url}", prefix: loss }
${httpBlock}
syncs:
  - name: corp
    schedule: { every: 1h }
    source: { type: file, path: ${writeExport(USERS, [GROUP])} }
    target: { baseUrl: ${tv.baseUrl}, token: "\${T}", requestsPerSecond: 1000, concurrency: 2 }
`,
    { env: { T: TOKEN, TRIGGER: TRIGGER_TOKEN } },
  );
  const lines: string[] = [];
  const log = createLogger({ level: 'info', destination: { write: (line: string) => void lines.push(line) } });
  const daemon = await Daemon.start(config, log, { scheduler: true, worker: true, runtime: { ...FAST, stateCheckMs } });
  cleanups.push(() => daemon.stop());
  const observability = new Observability(config, daemon.redis, log);
  const http = await observability.serve(daemon);
  cleanups.push(() => observability.close());
  return { redis, tv, daemon, observability, base: `http://127.0.0.1:${http.port}`, lines };
}

function created(tv: Running['tv']): string[] {
  return tv.emulator
    .dump()
    .users.filter((u) => u.userName !== OWNER)
    .map((u) => u.userName);
}

async function readyz(base: string, timeoutMs = 5000): Promise<{ status: number; body: { ready: boolean; reason: string } }> {
  const answer = await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(timeoutMs) });
  return { status: answer.status, body: (await answer.json()) as { ready: boolean; reason: string } };
}

async function reports(daemon: Daemon): Promise<CycleReport[]> {
  return daemon.runtime('corp').store.reports();
}

/** The schedule and the queue setting a lost Redis takes with it. */
async function settings(daemon: Daemon) {
  const { cycles } = daemon.runtime('corp').queues;
  return { scheduler: (await cycles.getJobScheduler(schedulerId('corp')))?.every, concurrency: await cycles.getGlobalConcurrency() };
}

/** After the loss: the interrupted cycle failed with a report, and the next one (scheduled again) converges. */
async function expectRecovered(run: Running) {
  await until(async () => (await reports(run.daemon)).some((r) => r.outcome === 'failed'), 30_000, 'the interrupted cycle to be reported');
  const failed = (await reports(run.daemon)).find((r) => r.outcome === 'failed')!;
  expect(failed.trigger).toBe('schedule');
  expect(failed.failure?.message).toMatch(LOST);
  const unrecorded = Number(LOST.exec(failed.failure?.message ?? '')?.[1]);
  expect(unrecorded).toBeGreaterThan(0);
  expect(unrecorded).toBeLessThanOrEqual(USERS.length);

  await until(
    async () => (await reports(run.daemon)).some((r) => r.outcome === 'succeeded'),
    60_000,
    'the restored schedule to run a cycle that finishes the work',
  );
  expect(new Set(created(run.tv))).toEqual(new Set(USERS.map((u) => u.email)));
  expect(created(run.tv)).toHaveLength(USERS.length);
  const groups = run.tv.emulator.dump().groups.filter((g) => g.displayName === GROUP.name);
  expect(groups).toHaveLength(1);
  expect(groups[0]!.memberIds).toHaveLength(10);
}

describe.skipIf(!haveRedisServer)(`Redis losing its data mid-cycle${NO_REDIS_SERVER}`, () => {
  it('FLUSHALL: not ready until the schedule and queue settings are back; the cycle in flight is reported as failed', async () => {
    const run = await start(1000);
    expect(await settings(run.daemon)).toEqual({ scheduler: 3_600_000, concurrency: 1 });
    expect((await readyz(run.base)).status).toBe(200);
    // The scheduler's first cycle runs at once; let it get half-way.
    await until(() => created(run.tv).length >= 20, 30_000, 'the first cycle to create users');

    await run.redis.command('FLUSHALL');
    const right = await readyz(run.base);
    expect(right).toEqual({ status: 503, body: { ready: false, reason: 'Redis lost its data; the schedule and queue settings are being restored' } });

    await until(async () => (await readyz(run.base)).status === 200, 15_000, '/readyz to say ready again');
    expect(await settings(run.daemon)).toEqual({ scheduler: 3_600_000, concurrency: 1 });
    await expectRecovered(run);
    expect(run.lines.filter((l) => l.includes('Redis lost its data (restarted empty or flushed)'))).toHaveLength(1);
  });

  it('a restart without its data: one log line when Redis goes away and one when it is back; then the same recovery', async () => {
    const printed = vi.spyOn(console, 'error');
    const run = await start(500);
    await until(() => created(run.tv).length >= 20, 30_000, 'the first cycle to create users');

    await run.redis.kill();
    await new Promise((r) => setTimeout(r, 2000));
    const down = await readyz(run.base);
    expect(down).toEqual({ status: 503, body: { ready: false, reason: 'Redis does not answer' } });
    await run.redis.up();

    await until(async () => (await readyz(run.base)).status === 200, 20_000, '/readyz to say ready again');
    expect(await settings(run.daemon)).toEqual({ scheduler: 3_600_000, concurrency: 1 });
    await expectRecovered(run);

    await until(() => run.lines.some((l) => l.includes('Redis answers again')), 10_000, 'the end of the outage to be logged');
    const entries = run.lines.map((l) => JSON.parse(l) as { level: number; msg: string; downMs?: number; err?: unknown; stack?: unknown });
    const wentAway = entries.filter((e) => e.msg.startsWith('Redis is unreachable'));
    const cameBack = entries.filter((e) => e.msg === 'Redis answers again');
    expect(wentAway).toHaveLength(1);
    expect(cameBack).toHaveLength(1);
    expect(cameBack[0]!.downMs).toBeGreaterThanOrEqual(2000);
    // No line per retry and connection, and no stack traces, in the log or on the console.
    const others = entries.filter((e) => !wentAway.includes(e) && !cameBack.includes(e));
    expect(others.filter((e) => /ECONN|Connection is closed|max retries/i.test(JSON.stringify(e)))).toEqual([]);
    expect(run.lines.join('\n')).not.toMatch(/\n\s+at /);
    expect(printed).not.toHaveBeenCalled();
  });

  it('a restart that keeps the data is an outage only: nothing restored, the cycle finishes', async () => {
    const run = await start(500, ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', mkdtempSync(join(tmpdir(), 'tvsync-aof-'))]);
    await until(() => created(run.tv).length >= 20, 30_000, 'the first cycle to create users');
    await run.redis.kill();
    await new Promise((r) => setTimeout(r, 1500));
    await run.redis.up();

    await until(async () => (await reports(run.daemon)).length > 0, 60_000, 'the cycle to finish');
    const [report] = await reports(run.daemon);
    expect(report?.outcome, JSON.stringify(report?.failure)).toBe('succeeded');
    expect(new Set(created(run.tv))).toEqual(new Set(USERS.map((u) => u.email)));
    expect(created(run.tv)).toHaveLength(USERS.length);
    await until(() => run.lines.some((l) => l.includes('Redis answers again')), 10_000, 'the end of the outage to be logged');
    expect(run.lines.filter((l) => l.includes('Redis lost its data'))).toEqual([]);
    expect((await readyz(run.base)).status).toBe(200);
  });
});

describe.skipIf(!haveRedisServer)(`/readyz of a running daemon${NO_REDIS_SERVER}`, () => {
  it('/readyz answers "not ready" in time instead of hanging, and "ready" once Redis answers again', async () => {
    const run = await start(60_000);
    await until(async () => (await readyz(run.base)).status === 200, 10_000, 'ready');
    // Every client of the server waits four seconds for any answer.
    await run.redis.command('CLIENT', 'PAUSE', 4000, 'ALL');
    const stalled = await readyz(run.base, 3000);
    expect(stalled).toEqual({ status: 503, body: { ready: false, reason: 'Redis does not answer' } });
    await until(async () => (await readyz(run.base)).status === 200, 15_000, 'ready after the pause');
  });

  it('/readyz names no quarantine reason without the token, and shows the checks with it', async () => {
    const run = await start(60_000, [], 'http: { host: 127.0.0.1, port: 0, triggerToken: "${TRIGGER}" }');
    await run.daemon.runtime('corp').health.save({
      consecutiveFailures: 3,
      quarantines: 1,
      quarantinedUntil: Date.now() + 3_600_000,
      reason: '3 failing cycles in a row (last: jane.doe@corp.example refused)',
    });
    const plain = await readyz(run.base);
    expect(plain).toEqual({ status: 503, body: { ready: false, reason: 'a sync is quarantined' } });
    const detailed = await fetch(`${run.base}/readyz`, { headers: { authorization: `Bearer ${TRIGGER_TOKEN}` } });
    expect(detailed.status).toBe(503);
    const body = (await detailed.json()) as { reason: string; checks: { name: string; ok: boolean; detail: string }[] };
    expect(body.reason).toBe('a sync is quarantined');
    expect(body.checks).toEqual(
      expect.arrayContaining([
        { name: 'redis', ok: true, detail: 'Redis answers' },
        expect.objectContaining({ name: 'sync corp', ok: false, detail: expect.stringContaining('jane.doe@corp.example refused') }),
      ]),
    );
  });
});
