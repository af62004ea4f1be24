import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import type { DirectoryUser } from '../../src/model/directory.js';
import type { Daemon } from '../../src/runtime/daemon.js';
import { ROLES_FORBIDDEN } from '../../src/runtime/roles.js';
import { OWNER, TOKEN, people, startEmulator, writeExport } from '../support/fixtures.js';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.js';
import { runCycle, startWorker } from '../support/cycle.js';

type Started = Awaited<ReturnType<typeof startEmulator>>;
type Group = { id: string; name: string; members: string[] };
type Mapping = { idpGroup: string; role: string; assign?: 'usergroup' | 'accounts' };

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

async function emulator(opts: Parameters<typeof startEmulator>[0] = {}): Promise<Started> {
  const tv = await startEmulator(opts);
  emulators.push(tv);
  return tv;
}

/** The Web API of the emulator, as an admin clicking in the console would use it. */
function webApi(tv: Started) {
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${tv.webApiBaseUrl}${path}`, {
      method,
      headers: { Authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined };
  };
  return {
    call,
    async createRole(name: string): Promise<string> {
      const res = await call('POST', '/userroles', { Name: name });
      expect(res.status).toBe(200);
      return (res.body?.Role as { Id: string } | undefined)?.Id ?? '';
    },
    async groupsOf(roleId: string): Promise<string[]> {
      const res = await call('GET', `/userroles/assignments/usergroups?userRoleId=${roleId}`);
      return ((res.body?.AssignedToGroups as string[]) ?? []).sort();
    },
    async accountsOf(roleId: string): Promise<string[]> {
      const ids: string[] = [];
      let token: string | null = null;
      do {
        const res = await call('GET', `/userroles/assignments/account?userRoleId=${roleId}${token ? `&continuationToken=${token}` : ''}`);
        ids.push(...((res.body?.AssignedToUsers as string[] | undefined) ?? []));
        token = res.body?.ContinuationToken as string | null;
      } while (token);
      return ids.sort();
    },
  };
}

/** One sync of a file export, with roles; each call starts a worker on the same Redis prefix (a config change is a restart). */
function syncOf(tv: Started, dir: string) {
  const prefix = testPrefix('roles');
  prefixes.push(prefix);
  return async (mappings: Mapping[], extra = '') => {
    await Promise.all(daemons.splice(0).map((d) => d.stop()));
    const config = parseConfig(
      `redis: { url: "${REDIS_URL}", prefix: ${prefix} }
syncs:
  - name: corp
    source: { type: file, path: ${dir}, settle: 0s }
    target: { baseUrl: ${tv.baseUrl}, token: "\${T}", tokenOwner: ${OWNER}, requestsPerSecond: 5000, concurrency: 16 }
    roles:
      enabled: true
      mappings: ${JSON.stringify(mappings)}
${extra}`,
      { env: { T: TOKEN } },
    );
    const daemon = await startWorker(config);
    daemons.push(daemon);
    return () => runCycle(daemon);
  };
}

const ids = (users: DirectoryUser[]) => users.map((u) => u.id);
function groupId(tv: Started, name: string): string {
  const group = tv.emulator.dump().groups.find((g) => g.displayName === name);
  if (!group) throw new Error(`no group ${name}`);
  return group.id;
}

describe('roles from IdP groups against the emulator', () => {
  it('assigns a mapped role to the user group, moves it when the mapping changes, takes back only what it gave', async () => {
    const tv = await emulator();
    const api = webApi(tv);
    const [support, admins, auditors] = [await api.createRole('Support'), await api.createRole('Admins'), await api.createRole('Auditors')];
    const users = people(6, 70_000);
    const groups: Group[] = [
      { id: 'g-help', name: 'Helpdesk R', members: ids(users.slice(0, 3)) },
      { id: 'g-ops', name: 'Ops R', members: ids(users.slice(3)) },
    ];
    const dir = writeExport(users, groups);
    const start = syncOf(tv, dir);

    // Added: by IdP group id and role name, and by IdP group name and role id.
    let cycle = await start([
      { idpGroup: 'g-help', role: 'Support' },
      { idpGroup: 'Ops R', role: auditors },
    ]);
    const added = await cycle();
    expect(added.outcome).toBe('succeeded');
    expect(added.roles?.status).toBe('synced');
    expect(added.operations.assignRole).toMatchObject({ planned: 2, applied: 2 });
    const help = groupId(tv, 'Helpdesk R');
    const ops = groupId(tv, 'Ops R');
    expect(await api.groupsOf(support)).toEqual([help]);
    expect(await api.groupsOf(auditors)).toEqual([ops]);
    // Roles an admin gave by hand to groups tvsync manages: a mapped role to another group, and an unmapped role.
    expect((await api.call('POST', '/userroles/assign/usergroup', { UserRoleId: support, UserGroupId: ops })).status).toBe(204);
    expect((await api.call('POST', '/userroles/assign/usergroup', { UserRoleId: admins, UserGroupId: help })).status).toBe(204);

    // Nothing changed: nothing sent, and the hand-given Support of Ops is not taken for tvsync's.
    const quiet = await cycle();
    expect(quiet.operations.assignRole.planned + quiet.operations.unassignRole.planned).toBe(0);
    expect(await api.groupsOf(support)).toEqual([help, ops].sort());

    // Changed: Helpdesk goes from Support to Admins (already there by hand: kept, not recorded as tvsync's).
    cycle = await start([
      { idpGroup: 'g-help', role: 'Auditors' },
      { idpGroup: 'Ops R', role: auditors },
    ]);
    const changed = await cycle();
    expect(changed.operations.assignRole.applied).toBe(1);
    expect(changed.operations.unassignRole.applied).toBe(1);
    expect(await api.groupsOf(support)).toEqual([ops]);
    expect(await api.groupsOf(auditors)).toEqual([help, ops].sort());
    expect(await api.groupsOf(admins)).toEqual([help]);

    // Removed from the config: what tvsync assigned is taken back, the hand-given role stays.
    cycle = await start([
      { idpGroup: 'g-help', role: 'Admins' },
      { idpGroup: 'g-help', role: 'Nobody Has This Role' },
    ]);
    const removed = await cycle();
    expect(removed.outcome).toBe('succeeded');
    expect(removed.operations.unassignRole.applied).toBe(2);
    expect(removed.operations.assignRole.planned).toBe(0);
    expect(await api.groupsOf(auditors)).toEqual([]);
    expect(await api.groupsOf(admins)).toEqual([help]);
    expect(removed.roles?.skipped).toEqual([expect.objectContaining({ reason: 'role-not-found', role: 'Nobody Has This Role' })]);

    // Admins was given by hand: a mapping that goes away never takes it back.
    cycle = await start([]);
    const none = await cycle();
    expect(none.operations.unassignRole.planned).toBe(0);
    expect(await api.groupsOf(admins)).toEqual([help]);
  });

  it('takes no role away when the IdP read comes back empty', async () => {
    const tv = await emulator();
    const api = webApi(tv);
    const support = await api.createRole('Support');
    const users = people(4, 71_000);
    const dir = writeExport(users, [{ id: 'g-help', name: 'Helpdesk E', members: ids(users) }]);
    const cycle = await syncOf(tv, dir)([{ idpGroup: 'g-help', role: 'Support' }]);
    expect((await cycle()).operations.assignRole.applied).toBe(1);
    const help = groupId(tv, 'Helpdesk E');

    writeExport([], [], dir);
    const empty = await cycle();
    expect(empty.operations.unassignRole.planned).toBe(0);
    expect(empty.roles?.removalsBlocked?.reason).toBe('source-empty');
    expect(empty.notices.some((n) => n.startsWith('No role is taken away this cycle'))).toBe(true);
    expect(await api.groupsOf(support)).toEqual([help]);
  });

  it('turns roles off with one line when the token lacks the user-role permission; users are still synced', async () => {
    const tv = await emulator({ deniedWebApi: ['userroles'] });
    const users = people(3, 72_000);
    const dir = writeExport(users, [{ id: 'g-help', name: 'Helpdesk D', members: ids(users) }]);
    const report = await (await syncOf(tv, dir)([{ idpGroup: 'g-help', role: 'Support' }]))();
    expect(report.outcome).toBe('succeeded');
    expect(report.operations.createUser.applied).toBe(3);
    expect(report.operations.createGroup.applied).toBe(1);
    expect(report.roles).toEqual({ status: 'unavailable', detail: ROLES_FORBIDDEN, skipped: [], held: { count: 0, items: [] } });
    expect(report.failures).toEqual([]);
    expect([...report.notices, ...report.skipped.map((s) => s.message)].filter((line) => line.includes('role'))).toEqual([]);
  });

  it('assigns per account in calls of at most 100, never to the token owner, and takes back only its own', async () => {
    const tv = await emulator();
    const api = webApi(tv);
    const support = await api.createRole('Support');
    const users = people(150, 73_000);
    const owner: DirectoryUser = { id: 'emp-owner', email: OWNER, givenName: 'Token', familyName: 'Owner', active: true };
    const dir = writeExport([...users, owner], [{ id: 'g-all', name: 'Everyone A', members: [...ids(users), owner.id] }]);
    const start = syncOf(tv, dir);
    let cycle = await start([{ idpGroup: 'g-all', role: 'Support', assign: 'accounts' }], '    groups: { enabled: false }\n');

    tv.emulator.resetStats();
    const first = await cycle();
    expect(first.outcome).toBe('succeeded');
    expect(first.operations.assignRole).toMatchObject({ planned: 2, applied: 2 });
    expect(tv.emulator.stats.byRoute['POST /other']).toBeGreaterThanOrEqual(2);
    const state = tv.emulator.dump();
    const ownerId = state.users.find((u) => u.userName === OWNER)?.id;
    const expected = state.users.filter((u) => u.userName !== OWNER).map((u) => u.id);
    const assigned = await api.accountsOf(support);
    expect(assigned).toEqual(expected.sort());
    expect(assigned).not.toContain(ownerId);
    expect(first.roles?.skipped).toEqual(expect.arrayContaining([expect.objectContaining({ reason: 'token-owner', tvUserId: ownerId })]));

    // A 101st-call limit holds at the emulator too.
    const tooMany = await api.call('POST', '/userroles/assign/account', { UserRoleId: support, UserIds: expected.slice(0, 101) });
    expect(tooMany.status).toBe(400);
    expect(tooMany.body).toMatchObject({ error: 'invalid_request', error_code: 400 });

    // The owner given the role by hand before the mapping goes: only tvsync's 150 are taken back, in two calls.
    expect((await api.call('POST', '/userroles/assign/account', { UserRoleId: support, UserIds: [ownerId] })).status).toBe(204);
    cycle = await start([], '    groups: { enabled: false }\n    policy: { memberRemovalThreshold: { maxCount: 1000, maxPercent: 100 } }\n');
    const removed = await cycle();
    expect(removed.operations.unassignRole).toMatchObject({ planned: 2, applied: 2 });
    expect(await api.accountsOf(support)).toEqual([ownerId]);
  });

  it('holds role removals over the member-removal threshold', async () => {
    const tv = await emulator();
    const api = webApi(tv);
    const support = await api.createRole('Support');
    const users = people(30, 74_000);
    const dir = writeExport(users, [{ id: 'g-all', name: 'Everyone H', members: ids(users) }]);
    const start = syncOf(tv, dir);
    await (await start([{ idpGroup: 'g-all', role: 'Support', assign: 'accounts' }], '    groups: { enabled: false }\n'))();
    expect(await api.accountsOf(support)).toHaveLength(30);

    const held = await (await start([], '    groups: { enabled: false }\n'))();
    expect(held.operations.unassignRole.planned).toBe(0);
    expect(held.roles?.held.count).toBe(1);
    expect(held.notices.some((n) => n.includes('policy.memberRemovalThreshold'))).toBe(true);
    expect(await api.accountsOf(support)).toHaveLength(30);
  });
});
