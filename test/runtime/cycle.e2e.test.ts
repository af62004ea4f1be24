import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import type { DirectoryUser } from '../../src/model/directory.js';
import { Daemon } from '../../src/runtime/daemon.js';
import type { CycleReport } from '../../src/plan/report.js';
import { runCycle, startWorker } from '../support/cycle.js';
import { TOKEN, people, silentLog, startEmulator, writeExport } from '../support/fixtures.js';
import { FAST } from '../support/runtime.js';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.js';

type Started = Awaited<ReturnType<typeof startEmulator>>;
let tv: Started;
const prefixes: string[] = [];
const daemons: Daemon[] = [];

beforeAll(async () => {
  tv = await startEmulator({ outsideEmails: ['outsider@elsewhere.example'] });
});
afterEach(async () => {
  await Promise.all(daemons.splice(0).map((d) => d.stop()));
});
afterAll(async () => {
  await tv.emulator.stop();
  await Promise.all(prefixes.map(dropPrefix));
});

function configFor(exportDir: string, opts: { prefix: string; sync?: string; rps?: number; concurrency?: number; extra?: string; baseUrl?: string }) {
  return parseConfig(
    `redis: { url: "${REDIS_URL}", prefix: ${opts.prefix} }
syncs:
  - name: ${opts.sync ?? 'corp'}
    source: { type: file, path: ${exportDir}, settle: 0s }
    target: { baseUrl: ${opts.baseUrl ?? tv.baseUrl}, token: "\${T}", requestsPerSecond: ${opts.rps ?? 1000}, concurrency: ${opts.concurrency ?? 16} }
${opts.extra ?? ''}`,
    { env: { T: TOKEN } },
  );
}

/** The users tvsync provisioned (the token owner aside). */
function provisioned() {
  return tv.emulator.dump().users.filter((u) => u.userName.startsWith('person'));
}

describe('sync cycles on real Redis against the emulator', () => {
  it('provisions 2,000 users, then a cycle with no change writes nothing', async () => {
    const prefix = testPrefix('initial');
    prefixes.push(prefix);
    const users = people(2000);
    const daemon = await startWorker(configFor(writeExport(users), { prefix }));
    daemons.push(daemon);

    const first = await runCycle(daemon);
    expect(first.outcome).toBe('succeeded');
    expect(first.operations.createUser).toEqual({ planned: 2000, applied: 2000, failed: 0, cancelled: 0 });
    const created = provisioned();
    expect(created).toHaveLength(2000);
    expect(new Set(created.map((u) => u.userName))).toEqual(new Set(users.map((u) => u.email)));

    const writes = tv.emulator.stats.writes;
    const second = await runCycle(daemon);
    expect(second.outcome).toBe('succeeded');
    expect(second.summary?.unchanged).toBe(2000);
    expect(Object.values(second.operations).every((c) => c.planned === 0)).toBe(true);
    expect(tv.emulator.stats.writes).toBe(writes);
  });
});

describe('changes between cycles', () => {
  it('gives exactly the expected writes; an e-mail change is a skipped rename', async () => {
    const prefix = testPrefix('changes');
    prefixes.push(prefix);
    const users: DirectoryUser[] = people(20, 5000);
    const dir = writeExport(users);
    const daemon = await startWorker(configFor(dir, { prefix }));
    daemons.push(daemon);
    expect((await runCycle(daemon)).operations.createUser.applied).toBe(20);

    const changed = users.slice(0, 18); // person5018 and person5019 leave the scope
    changed[0] = { ...changed[0]!, givenName: 'Renamed' };
    changed[1] = { ...changed[1]!, active: false };
    changed[2] = { ...changed[2]!, email: 'person5002.moved@corp.example' };
    changed.push(...people(1, 6000));
    writeExport(changed, [], dir);
    tv.emulator.resetStats();

    const report = await runCycle(daemon);
    expect(report.outcome).toBe('succeeded');
    expect(report.operations).toMatchObject({
      createUser: { planned: 1, applied: 1, failed: 0, cancelled: 0 },
      updateUser: { planned: 1, applied: 1, failed: 0, cancelled: 0 },
      reactivateUser: { planned: 0, applied: 0, failed: 0, cancelled: 0 },
      deactivateUser: { planned: 3, applied: 3, failed: 0, cancelled: 0 },
    });
    expect(report.skipped).toEqual([
      expect.objectContaining({
        reason: 'email-change-unsupported',
        email: 'person5002.moved@corp.example',
        message: expect.stringContaining('person5002@corp.example'),
      }),
    ]);
    const stats = tv.emulator.stats.byRoute;
    expect(stats['POST /Users']).toBe(1);
    expect(stats['PATCH /Users']).toBe(4);
    expect(stats['DELETE /Users']).toBe(0);
    const byMail = new Map(tv.emulator.dump().users.map((u) => [u.userName, u]));
    expect(byMail.get('person5000@corp.example')?.displayName).toBe('Renamed 5000');
    expect(byMail.get('person5001@corp.example')?.active).toBe(false);
    expect(byMail.get('person5018@corp.example')?.active).toBe(false);
    expect(byMail.get('person5002@corp.example')?.active).toBe(true);
    expect(byMail.has('person5002.moved@corp.example')).toBe(false);
  });

  it('reports an address owned outside the company and a failed IdP read', async () => {
    const prefix = testPrefix('failures');
    prefixes.push(prefix);
    const dir = writeExport([...people(2, 7000), { id: 'out', email: 'outsider@elsewhere.example', displayName: 'Out Sider', active: true }]);
    const daemon = await startWorker(configFor(dir, { prefix }));
    daemons.push(daemon);
    const report = await runCycle(daemon);
    expect(report.outcome).toBe('partial');
    expect(report.failures).toEqual([
      expect.objectContaining({
        failureClass: 'owned-outside-company',
        email: 'outsider@elsewhere.example',
        message: expect.stringContaining('outside the company'),
      }),
    ]);

    writeExport([], [], dir);
    const { writeFileSync } = await import('node:fs');
    writeFileSync(`${dir}/users.json`, '[{"id": ');
    const broken = await runCycle(daemon);
    expect(broken.outcome).toBe('failed');
    expect(broken.failure).toMatchObject({ failureClass: 'source-read', message: expect.stringContaining('nothing was deactivated') });
  });
});

describe('fault tolerance', () => {
  it('converges with 10% injected 5xx and a tight rate limit, with no duplicate user', async () => {
    const prefix = testPrefix('faults');
    prefixes.push(prefix);
    const users = people(300, 10_000);
    const dir = writeExport(users);
    // A TeamViewer of its own: the file's shared one holds thousands of users by now, and with 10% of
    // requests failing a read of that many pages would rarely get through at all.
    const own = await startEmulator();
    const emulator = own.emulator;
    const daemon = await startWorker(configFor(dir, { prefix, concurrency: 8, baseUrl: own.baseUrl }), { opAttempts: 12 });
    daemons.push(daemon);
    emulator.configure({ failureRate: 0.1, failureMode: 'mixed', rateLimit: { max: 60, windowMs: 1000 } });
    try {
      const reports = [await runCycle(daemon)];
      // A cycle may end with a few operations given up after their attempts, or fail as a whole when a
      // read keeps failing; the next one converges.
      while (reports.length < 4 && reports.at(-1)?.outcome !== 'succeeded') reports.push(await runCycle(daemon));
      const seen = JSON.stringify({ stats: emulator.stats, reports: reports.map((r) => [r.outcome, r.failure, r.operations.createUser]) });
      expect(emulator.stats.injectedFailures, seen).toBeGreaterThan(5);
      expect(emulator.stats.rateLimited, seen).toBeGreaterThan(0);
    } finally {
      emulator.configure({ failureRate: 0, rateLimit: null });
    }
    const mine = emulator.dump().users.filter((u) => /^person1\d{4}@/.test(u.userName));
    expect(mine).toHaveLength(300);
    expect(new Set(mine.map((u) => u.userName.toLowerCase())).size).toBe(300);
    expect(mine.every((u) => u.active)).toBe(true);
    const clean = await runCycle(daemon);
    expect(clean.summary?.unchanged).toBe(300);
    await daemon.stop();
    await emulator.stop();
  });
});

describe('a cycle that runs out of time', () => {
  it.each([
    ['a job per operation', 12_000, {}],
    ['eight operations per job', 13_000, { opJobsPerCycle: 1, opBatchMax: 8 }],
  ])('cancels its queued operations so they cannot run after a later plan; the next cycle finishes the work (%s)', async (_, from, batching) => {
    const prefix = testPrefix('timeout');
    prefixes.push(prefix);
    const users = people(40, from);
    const daemon = await startWorker(configFor(writeExport(users), { prefix, concurrency: 1, rps: 1000 }), { cycleTimeoutMs: 400, ...batching });
    daemons.push(daemon);
    tv.emulator.configure({ latencyMs: 60 });
    let report: CycleReport;
    try {
      report = await runCycle(daemon);
      // Wait until every queued operation has an outcome: the cancelled ones record theirs quickly.
      const runtime = daemon.runtime('corp');
      for (let i = 0; i < 100 && (await runtime.store.resultCount(report.cycleId)) < 40; i++) await new Promise((r) => setTimeout(r, 100));
      const results = await runtime.store.results(report.cycleId);
      expect(report.outcome).toBe('failed');
      expect(report.failure?.message).toMatch(/did not finish within/);
      expect(results.filter((r) => r.status === 'cancelled').length).toBeGreaterThan(10);
      expect(results.filter((r) => r.status === 'applied').length).toBeLessThan(40);
    } finally {
      tv.emulator.configure({ latencyMs: 0 });
    }
    const next = await runCycle(daemon);
    expect(next.outcome).toBe('succeeded');
    expect(provisioned().filter((u) => new RegExp(`^person${String(from).slice(0, 2)}\\d{3}@`).test(u.userName))).toHaveLength(40);
  });
});

describe('the end of a cycle', () => {
  it('hands the report to its observers (metrics, alerts) before it stores it, and one that fails loses nothing', async () => {
    const prefix = testPrefix('observers');
    prefixes.push(prefix);
    const config = configFor(writeExport(people(3, 14_000)), { prefix });
    // `run --once` and `sync-now --wait` act on the stored report: by then the alert must be on its way.
    const storedWhenObserved: (CycleReport | undefined)[] = [];
    let fail = false;
    const daemon = await Daemon.start(config, silentLog, {
      scheduler: false,
      worker: true,
      runtime: FAST,
      onReport: async (report) => {
        storedWhenObserved.push(await daemon.runtime('corp').store.report(report.cycleId));
        if (fail) throw new Error('the webhook queue is gone');
      },
    });
    daemons.push(daemon);
    expect((await runCycle(daemon)).outcome).toBe('succeeded');
    fail = true;
    const second = await runCycle(daemon);
    expect(second.outcome).toBe('succeeded');
    expect(storedWhenObserved).toEqual([undefined, undefined]);
    expect((await daemon.runtime('corp').store.report(second.cycleId))?.cycleId).toBe(second.cycleId);
  });
});
