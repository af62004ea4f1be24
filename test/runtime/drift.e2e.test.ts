import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import type { DirectoryUser } from '../../src/model/directory.js';
import { Redis } from 'ioredis';
import { Daemon } from '../../src/runtime/daemon.js';
import { Observability } from '../../src/runtime/observability.js';
import type { CycleReport } from '../../src/plan/report.js';
import { TOKEN, people, silentLog, startEmulator, writeExport } from '../support/fixtures.js';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.js';
import { runCycle } from '../support/cycle.js';
import { FAST } from '../support/runtime.js';

type Started = Awaited<ReturnType<typeof startEmulator>>;
type Group = { id: string; name: string; members: string[] };
let tv: Started;
let redis: Redis;
const prefixes: string[] = [];
const daemons: Daemon[] = [];

beforeAll(async () => {
  tv = await startEmulator();
  redis = new Redis(REDIS_URL);
});
afterEach(async () => {
  tv.emulator.configure({ dropWrites: null });
  await Promise.all(daemons.splice(0).map((d) => d.stop()));
});
afterAll(async () => {
  await tv.emulator.stop();
  await Promise.all(prefixes.map(dropPrefix));
  redis.disconnect();
});

async function startSync(users: DirectoryUser[], groups: Group[]) {
  const prefix = testPrefix('drift');
  prefixes.push(prefix);
  const dir = writeExport(users, groups);
  const config = parseConfig(
    `redis: { url: "${REDIS_URL}", prefix: ${prefix} }
syncs:
  - name: corp
    source: { type: file, path: ${dir}, settle: 0s }
    target: { baseUrl: ${tv.baseUrl}, token: "\${T}", requestsPerSecond: 5000, concurrency: 16 }
`,
    { env: { T: TOKEN } },
  );
  // Wired as the daemon runs: the provisioning log and the metrics follow each cycle.
  const observability = new Observability(config, redis, silentLog);
  const daemon = await Daemon.start(config, silentLog, { scheduler: false, worker: true, runtime: FAST, ...observability.hooks() });
  daemons.push(daemon);
  return {
    cycle: (): Promise<CycleReport> => runCycle(daemon),
    rewrite: (u: DirectoryUser[], g: Group[]) => writeExport(u, g, dir),
    log: observability.provisioningLog('corp'),
    metrics: () => observability.metrics.metrics(),
  };
}

const ids = (users: DirectoryUser[]) => users.map((u) => u.id);

function userId(email: string): string {
  const user = tv.emulator.dump().users.find((u) => u.userName === email);
  if (!user) throw new Error(`${email} not in the emulator`);
  return user.id;
}

function group(name: string) {
  const found = tv.emulator.dump().groups.find((g) => g.displayName === name);
  if (!found) throw new Error(`group ${name} not in the emulator`);
  return found;
}

/** A change made by hand in TeamViewer: straight to its SCIM API, as an admin's tool would. */
async function byHand(path: string, operations: unknown[]): Promise<void> {
  const res = await fetch(`${tv.baseUrl}${path}`, {
    method: 'PATCH',
    headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/scim+json' },
    body: JSON.stringify({ schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: operations }),
  });
  expect(res.ok).toBe(true);
}

function expectQuiet(report: CycleReport): void {
  expect(report.outcome).toBe('succeeded');
  expect(report.writesNotKept).toBeUndefined();
  expect(report.drift).toBeUndefined();
}

describe('writes checked, drift seen, against the emulator', () => {
  it('reports a member add TeamViewer answered with success and did not keep, and adds it again', async () => {
    const users = people(4, 70_000);
    const { cycle, rewrite, log, metrics } = await startSync(users, [{ id: 'g-a', name: 'Drift Kept A', members: ids(users.slice(0, 3)) }]);
    expectQuiet(await cycle());
    expectQuiet(await cycle());

    tv.emulator.configure({ dropWrites: { groupMembers: true } });
    rewrite(users, [{ id: 'g-a', name: 'Drift Kept A', members: ids(users) }]);
    const lost = await cycle();
    expect(lost.operations.addGroupMembers.applied).toBe(1);
    expect(group('Drift Kept A').memberIds).toHaveLength(3);
    expectQuiet(lost);

    tv.emulator.configure({ dropWrites: null });
    const next = await cycle();
    const newcomer = userId(users[3]!.email!);
    expect(next.writesNotKept).toMatchObject({ count: 1, byKind: { 'group-member-add': 1 } });
    expect(next.writesNotKept?.items[0]).toMatchObject({ kind: 'group-member-add', group: 'Drift Kept A', memberIds: [newcomer] });
    expect(next.drift).toBeUndefined();
    expect(next.operations.addGroupMembers.applied).toBe(1);
    expect(group('Drift Kept A').memberIds).toContain(newcomer);
    const entries = await log.query({ cycleId: next.cycleId });
    expect(entries).toEqual(expect.arrayContaining([expect.objectContaining({ kind: 'not-kept', outcome: 'reported', reason: 'group-member-add' })]));
    expect(await metrics()).toMatch(/tvsync_writes_not_kept_total\{sync="corp",kind="group-member-add"\} 1\n/);

    expectQuiet(await cycle());
  });

  it('reports a group create that was answered 201 and not kept, and creates it again', async () => {
    const users = people(2, 71_000);
    const { cycle } = await startSync(users, [{ id: 'g-b', name: 'Drift Kept B', members: ids(users) }]);
    tv.emulator.configure({ dropWrites: { groupCreate: true } });
    const first = await cycle();
    expect(first.operations.createGroup.applied).toBe(1);
    expect(tv.emulator.dump().groups.some((g) => g.displayName === 'Drift Kept B')).toBe(false);
    tv.emulator.configure({ dropWrites: null });
    const next = await cycle();
    expect(next.writesNotKept).toMatchObject({ count: 1, byKind: { 'group-create': 1 } });
    expect(next.operations.createGroup.applied).toBe(1);
    expect(group('Drift Kept B').memberIds).toHaveLength(2);
    expectQuiet(await cycle());
  });

  it('reports a user renamed by hand as drift user-name, then sets the name back', async () => {
    const users = people(3, 72_000);
    const { cycle, log, metrics } = await startSync(users, []);
    expectQuiet(await cycle());
    expectQuiet(await cycle());
    const id = userId(users[1]!.email!);
    const name = tv.emulator.dump().users.find((u) => u.id === id)!.displayName;
    await byHand(`/Users/${id}`, [{ op: 'replace', path: 'displayName', value: 'Renamed By Hand' }]);

    const next = await cycle();
    expect(next.drift).toMatchObject({ count: 1, byKind: { 'user-name': 1 } });
    expect(next.drift?.items[0]).toMatchObject({ kind: 'user-name', tvUserId: id, email: users[1]!.email });
    expect(next.writesNotKept).toBeUndefined();
    expect(next.operations.updateUser.applied).toBe(1);
    expect(tv.emulator.dump().users.find((u) => u.id === id)?.displayName).toBe(name);
    const entries = await log.query({ cycleId: next.cycleId });
    expect(entries).toEqual(expect.arrayContaining([expect.objectContaining({ kind: 'drift', reason: 'user-name', tvUserId: id })]));
    expect(await metrics()).toMatch(/tvsync_drift_total\{sync="corp",kind="user-name"\} 1\n/);
    expect(await metrics()).toMatch(/tvsync_drift_total\{sync="corp",kind="group-members"\} 0\n/);

    expectQuiet(await cycle());
  });

  it('reports a user deactivated by hand as drift user-active, then reactivates it', async () => {
    const users = people(2, 73_000);
    const { cycle } = await startSync(users, []);
    await cycle();
    await cycle();
    const id = userId(users[0]!.email!);
    await byHand(`/Users/${id}`, [{ op: 'replace', path: 'active', value: false }]);
    const next = await cycle();
    expect(next.drift).toMatchObject({ count: 1, byKind: { 'user-active': 1 } });
    expect(next.operations.reactivateUser.applied).toBe(1);
    expect(tv.emulator.dump().users.find((u) => u.id === id)?.active).toBe(true);
    expectQuiet(await cycle());
  });

  it('reports a member removed by hand from a managed group as drift group-members, then adds it back', async () => {
    const users = people(3, 74_000);
    const { cycle } = await startSync(users, [{ id: 'g-c', name: 'Drift Members C', members: ids(users) }]);
    expectQuiet(await cycle());
    expectQuiet(await cycle());
    const g = group('Drift Members C');
    const removed = userId(users[2]!.email!);
    await byHand(`/Groups/${g.id}`, [{ op: 'remove', path: `members[value eq "${removed}"]` }]);

    const next = await cycle();
    expect(next.drift).toMatchObject({ count: 1, byKind: { 'group-members': 1 } });
    expect(next.drift?.items[0]).toMatchObject({ kind: 'group-members', tvGroupId: g.id, memberIds: [removed] });
    expect(next.writesNotKept).toBeUndefined();
    expect(group('Drift Members C').memberIds).toContain(removed);
    expectQuiet(await cycle());
  });

  it('does not call a change the IdP made drift', async () => {
    const users = people(2, 75_000);
    const { cycle, rewrite } = await startSync(users, [{ id: 'g-d', name: 'Drift IdP D', members: ids(users) }]);
    await cycle();
    await cycle();
    rewrite([{ ...users[0]!, givenName: 'Renamed' }, users[1]!], [{ id: 'g-d', name: 'Drift IdP D2', members: ids(users.slice(0, 1)) }]);
    const changed = await cycle();
    expect(changed.operations).toMatchObject({ updateUser: { applied: 1 }, renameGroup: { applied: 1 }, removeGroupMembers: { applied: 1 } });
    expectQuiet(changed);
    expectQuiet(await cycle());
  });
});
