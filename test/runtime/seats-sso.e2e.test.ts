import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import type { DirectoryUser } from '../../src/model/directory.js';
import { TvsyncMetrics } from '../../src/observe/metrics.js';
import { renderReport } from '../../src/cli/render-report.js';
import type { CycleReport } from '../../src/plan/report.js';
import type { Daemon } from '../../src/runtime/daemon.js';
import type { EmulatorOptions } from '../../src/emulator/server.js';
import { TOKEN, people, startEmulator, writeExport } from '../support/fixtures.js';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.js';
import { provisioned, runCycle, startWorker } from '../support/cycle.js';
import { requestUserSync } from '../../src/runtime/fast-lane.js';

type Started = Awaited<ReturnType<typeof startEmulator>>;
const prefixes: string[] = [];
const daemons: Daemon[] = [];
const emulators: Started[] = [];

afterEach(async () => {
  await Promise.all(daemons.splice(0).map((d) => d.stop()));
  await Promise.all(emulators.splice(0).map((e) => e.emulator.stop()));
});
afterAll(async () => {
  await Promise.all(prefixes.map(dropPrefix));
});

async function startSync(
  users: DirectoryUser[],
  opts: { emulator?: Partial<EmulatorOptions>; extra?: string; groups?: { id: string; name: string; members: string[] }[] } = {},
) {
  const tv = await startEmulator(opts.emulator);
  emulators.push(tv);
  const prefix = testPrefix('seats');
  prefixes.push(prefix);
  const dir = writeExport(users, opts.groups ?? []);
  const config = parseConfig(
    `redis: { url: "${REDIS_URL}", prefix: ${prefix} }
syncs:
  - name: corp
    source: { type: file, path: ${dir}, settle: 0s }
    target: { baseUrl: ${tv.baseUrl}, token: "\${T}", requestsPerSecond: 5000, concurrency: 8 }
${opts.extra ?? ''}`,
    { env: { T: TOKEN } },
  );
  const daemon = await startWorker(config);
  daemons.push(daemon);
  const cycle = (): Promise<CycleReport> => runCycle(daemon);
  return { tv, cycle, daemon };
}

/** Web API requests the emulator saw for these areas (its stats count them per method and area). */
function webCalls(tv: Started, areas: string[]): number {
  const routes = tv.emulator.stats.byRoute;
  return Object.entries(routes)
    .filter(([route]) => areas.some((area) => route.endsWith(` /${area}`)))
    .reduce((n, [, count]) => n + count, 0);
}

async function exclusionList(tv: Started, domainId: string): Promise<string[]> {
  const res = await fetch(`${tv.webApiBaseUrl}/ssoDomain/${domainId}/exclusion`, { headers: { Authorization: `Bearer ${TOKEN}` } });
  expect(res.status).toBe(200);
  return ((await res.json()) as { emails: string[] }).emails;
}

async function metricLines(report: CycleReport, name: string): Promise<string[]> {
  const metrics = new TvsyncMetrics({ defaultMetrics: false });
  metrics.cycleFinished(report);
  return (await metrics.metrics()).split('\n').filter((l) => l.startsWith(`${name}{`));
}

const SEATS_ON = '    seats: { enabled: true }';

describe('seats before creates', () => {
  it('the fast lane does not create beyond the free seats either', async () => {
    const users = people(3, 74_000);
    // The token owner holds one of 2 seats: 1 is free.
    const { tv, cycle, daemon } = await startSync(users, { emulator: { seats: 2 }, extra: SEATS_ON });
    const first = await cycle();
    expect(first.seats).toMatchObject({ free: 1, waiting: 2 });
    const waiting = first.skipped.filter((s) => s.reason === 'no-free-seat').map((s) => s.sourceId ?? '');
    expect(waiting).toHaveLength(2);
    for (const ref of waiting) {
      const { report } = await requestUserSync(daemon.runtime('corp').queues.operations, ref, { waitMs: 20_000 });
      expect(report?.operations).toEqual([]);
      expect(report?.skipped.join(' ')).toMatch(/waits for a free seat/);
    }
    expect(provisioned(tv.emulator)).toHaveLength(1);
  });

  it('creates only as many users as there are free seats, reports the rest as waiting, and creates them once seats free up', async () => {
    const users = people(5, 70_000);
    // The token owner holds one seat: 3 are free.
    const { tv, cycle } = await startSync(users, {
      emulator: { seats: 4 },
      extra: SEATS_ON,
      groups: [{ id: 'g-all', name: 'Everyone S', members: users.map((u) => u.id) }],
    });

    const first = await cycle();
    expect(first.outcome).toBe('succeeded');
    expect(first.operations.createUser).toMatchObject({ planned: 3, applied: 3 });
    // In the plan's order: the first three of the export.
    expect(provisioned(tv.emulator).map((u) => u.userName)).toEqual(users.slice(0, 3).map((u) => u.email));
    expect(first.seats).toEqual({ total: 4, used: 1, free: 3, waiting: 2 });
    const waiting = first.skipped.filter((s) => s.reason === 'no-free-seat');
    expect(waiting.map((s) => s.email)).toEqual(users.slice(3).map((u) => u.email));
    expect(first.summary?.skipped['no-free-seat']).toBe(2);
    expect(first.notices.filter((n) => /2 creates wait for a free seat/.test(n))).toHaveLength(1);
    expect(renderReport(first)).toContain('seats: 1 of 4 used, 3 free; 2 creates wait for a free seat');
    // The group holds those who exist; the waiting ones are not members yet.
    const group = tv.emulator.dump().groups.find((g) => g.displayName === 'Everyone S');
    expect(group?.memberIds).toHaveLength(3);
    expect(await metricLines(first, 'tvsync_seats')).toEqual(
      expect.arrayContaining([
        'tvsync_seats{sync="corp",state="used"} 1',
        'tvsync_seats{sync="corp",state="free"} 3',
        'tvsync_seats{sync="corp",state="total"} 4',
      ]),
    );

    // Still no free seat: nothing is created, the two keep waiting.
    const second = await cycle();
    expect(second.operations.createUser.planned).toBe(0);
    expect(second.seats).toEqual({ total: 4, used: 4, free: 0, waiting: 2 });
    expect(provisioned(tv.emulator)).toHaveLength(3);

    // Seats free up (a larger licence): the waiting creates are released without anyone's help.
    tv.emulator.configure({ seats: 6 });
    const third = await cycle();
    expect(third.operations.createUser).toMatchObject({ planned: 2, applied: 2 });
    expect(third.seats).toEqual({ total: 6, used: 4, free: 2, waiting: 0 });
    expect(third.skipped.filter((s) => s.reason === 'no-free-seat')).toEqual([]);
    expect(provisioned(tv.emulator).map((u) => u.userName)).toEqual(users.map((u) => u.email));
    expect(tv.emulator.dump().groups.find((g) => g.displayName === 'Everyone S')?.memberIds).toHaveLength(5);
  });

  it('is off by default: no Web API call for seats or SSO, and every create runs', async () => {
    const users = people(4, 71_000);
    const { tv, cycle } = await startSync(users, { emulator: { seats: 1 } });
    const report = await cycle();
    expect(report.outcome).toBe('succeeded');
    expect(report.operations.createUser.applied).toBe(4);
    expect(report.seats).toBeUndefined();
    expect(report.sso).toBeUndefined();
    expect(webCalls(tv, ['company', 'users', 'ssoDomain'])).toBe(0);
  });

  it('a token without the licence permission turns the check off with one line; users are still synced', async () => {
    const users = people(3, 72_000);
    const { tv, cycle } = await startSync(users, { emulator: { seats: 1, deniedWebApi: ['company'] }, extra: SEATS_ON });
    const report = await cycle();
    expect(report.outcome).toBe('succeeded');
    expect(report.operations.createUser.applied).toBe(3);
    expect(provisioned(tv.emulator)).toHaveLength(3);
    expect(report.seats).toBeUndefined();
    const lines = report.notices.filter((n) => /seat/i.test(n));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/Seats are not checked this cycle: the token may not read the company licence \(HTTP 403/);
  });
});

describe('SSO health', () => {
  it('reports active users whose SSO status is not Active, per status, in the report and the metrics', async () => {
    const users = people(5, 73_000);
    const [a, b, c] = users.map((u) => u.email ?? '');
    const { tv, cycle } = await startSync(users, {
      emulator: { ssoStatus: { [a ?? '']: 3, [b ?? '']: 6, [c ?? '']: 6, 'gone@corp.example': 6 } },
      extra: '    sso: { report: true }',
    });
    // A deactivated account signs in nowhere: not reported.
    tv.emulator.load({ users: [{ id: 'u900', userName: 'gone@corp.example', displayName: 'Gone User', active: false }], groups: [] });
    const report = await cycle();
    expect(report.outcome).toBe('succeeded');
    expect(report.sso?.status).toBe('checked');
    // Users made by this cycle are read after planning: the first cycle sees the owner and the old account only.
    const second = await cycle();
    expect(second.sso?.notActive).toEqual({ NotValidated: 1, NotIncluded: 2 });
    expect(renderReport(second)).toContain('SSO not active: NotValidated 1 · NotIncluded 2');
    expect(second.sso?.users).toEqual([
      { email: a, status: 'NotValidated' },
      { email: b, status: 'NotIncluded' },
      { email: c, status: 'NotIncluded' },
    ]);
    expect(await metricLines(second, 'tvsync_sso_users')).toEqual(
      expect.arrayContaining(['tvsync_sso_users{sync="corp",status="NotValidated"} 1', 'tvsync_sso_users{sync="corp",status="NotIncluded"} 2']),
    );
  });

  it('keeps break-glass addresses on the exclusion list: added once, never duplicated, never one on the inclusion list, nothing removed', async () => {
    const { tv, cycle } = await startSync(people(2, 74_000), {
      emulator: {
        ssoDomains: [{ id: 'dom-1', name: 'corp.example', inclusion: ['in-sso@corp.example'], exclusion: ['kept-by-hand@corp.example'] }],
      },
      extra: '    sso: { breakGlass: [glass@corp.example, In-SSO@corp.example] }',
    });
    const first = await cycle();
    expect(first.outcome).toBe('succeeded');
    expect(first.operations.createUser.applied).toBe(2);
    expect(first.sso?.breakGlass).toMatchObject({ domainId: 'dom-1', added: ['glass@corp.example'], present: [], onInclusionList: ['In-SSO@corp.example'] });
    expect(first.notices.filter((n) => /In-SSO@corp\.example on the SSO inclusion list/.test(n))).toHaveLength(1);
    expect(await exclusionList(tv, 'dom-1')).toEqual(['kept-by-hand@corp.example', 'glass@corp.example']);

    const second = await cycle();
    expect(second.sso?.breakGlass).toMatchObject({ added: [], present: ['glass@corp.example'], onInclusionList: ['In-SSO@corp.example'] });
    expect(await exclusionList(tv, 'dom-1')).toEqual(['kept-by-hand@corp.example', 'glass@corp.example']);
    // One write in two cycles: the first cycle's add.
    expect(tv.emulator.stats.byRoute['POST /ssoDomain']).toBe(1);
    expect(tv.emulator.stats.byRoute['DELETE /ssoDomain'] ?? 0).toBe(0);
  });

  it('adds no break-glass address while the inclusion list names user groups (one may include it)', async () => {
    const { tv, cycle } = await startSync(people(1, 76_000), {
      emulator: { ssoDomains: [{ id: 'dom-1', name: 'corp.example', inclusion: ['ug-1234'], exclusion: [] }] },
      extra: '    sso: { breakGlass: [glass@corp.example] }',
    });
    const report = await cycle();
    expect(report.outcome).toBe('succeeded');
    expect(report.sso?.breakGlass?.added).toEqual([]);
    expect(report.notices.filter((n) => /inclusion list names user groups/.test(n))).toHaveLength(1);
    expect(await exclusionList(tv, 'dom-1')).toEqual([]);
  });

  it('a token without SSO permission: one line, users still synced', async () => {
    const { tv, cycle } = await startSync(people(2, 75_000), {
      emulator: { deniedWebApi: ['ssoDomain', 'users'] },
      extra: '    sso: { report: true, breakGlass: [glass@corp.example] }',
    });
    const report = await cycle();
    expect(report.outcome).toBe('succeeded');
    expect(provisioned(tv.emulator)).toHaveLength(2);
    expect(report.sso?.status).toBe('off');
    expect(report.notices.filter((n) => /SSO status is not reported: the token may not read users/.test(n))).toHaveLength(1);
    expect(report.notices.filter((n) => /Break-glass addresses are not kept: the token may not manage SSO domains/.test(n))).toHaveLength(1);
  });
});
