import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { writeFileExport } from '../../src/connectors/file/manifest.js';
import type { DirectoryUser } from '../../src/model/directory.js';
import type { Daemon } from '../../src/runtime/daemon.js';
import type { CycleReport } from '../../src/plan/report.js';
import { TOKEN, people, startEmulator, writeExport } from '../support/fixtures.js';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.js';
import { runCycle, startWorker } from '../support/cycle.js';

type Started = Awaited<ReturnType<typeof startEmulator>>;
type Group = { id: string; name: string; members: string[] };
let tv: Started;
const prefixes: string[] = [];
const daemons: Daemon[] = [];

beforeAll(async () => {
  tv = await startEmulator({ outsideEmails: ['blocked@elsewhere.example'] });
});
afterEach(async () => {
  await Promise.all(daemons.splice(0).map((d) => d.stop()));
});
afterAll(async () => {
  await tv.emulator.stop();
  await Promise.all(prefixes.map(dropPrefix));
});

async function startSync(users: DirectoryUser[], groups: Group[], opts: { baseUrl?: string; extra?: string } = {}) {
  const prefix = testPrefix('groups');
  prefixes.push(prefix);
  const dir = writeExport(users, groups);
  const config = parseConfig(
    `redis: { url: "${REDIS_URL}", prefix: ${prefix} }
syncs:
  - name: corp
    source: { type: file, path: ${dir}, settle: 0s }
    target: { baseUrl: ${opts.baseUrl ?? tv.baseUrl}, token: "\${T}", requestsPerSecond: 5000, concurrency: 16 }
${opts.extra ?? ''}`,
    { env: { T: TOKEN } },
  );
  const daemon = await startWorker(config);
  daemons.push(daemon);
  const cycle = (): Promise<CycleReport> => runCycle(daemon);
  return { dir, cycle, rewrite: (u: DirectoryUser[], g: Group[]) => writeExport(u, g, dir) };
}

/** The emulator's groups by name, members as e-mail addresses. */
function groupsByName(): Map<string, string[]> {
  const state = tv.emulator.dump();
  const mail = new Map(state.users.map((u) => [u.id, u.userName]));
  return new Map(state.groups.map((g) => [g.displayName, g.memberIds.map((m) => mail.get(m) ?? m).sort()]));
}

const ids = (users: DirectoryUser[]) => users.map((u) => u.id);
const mails = (users: DirectoryUser[]) => users.map((u) => u.email!).sort();

describe('group provisioning against the emulator', () => {
  it('creates groups with members, renames, and adds/removes members across cycles; empty groups are not created', async () => {
    const users = people(12, 40_000);
    const { cycle, rewrite } = await startSync(users, [
      { id: 'g-sales', name: 'Sales A', members: ids(users.slice(0, 5)) },
      { id: 'g-ops', name: 'Ops A', members: ids(users.slice(5, 12)) },
      { id: 'g-empty', name: 'Empty A', members: [] },
    ]);
    const first = await cycle();
    expect(first.outcome).toBe('succeeded');
    expect(first.groups?.status).toBe('synced');
    expect(first.operations.createGroup.applied).toBe(2);
    let groups = groupsByName();
    expect(groups.get('Sales A')).toEqual(mails(users.slice(0, 5)));
    expect(groups.get('Ops A')).toEqual(mails(users.slice(5, 12)));
    expect(groups.has('Empty A')).toBe(false);
    expect(first.groups?.skipped).toEqual(expect.arrayContaining([expect.objectContaining({ reason: 'empty-group-not-created' })]));

    // Group operations run after the users they need; a quiet cycle sends no group write.
    const quiet = await cycle();
    expect(quiet.groups?.summary?.unchanged).toBe(2);

    rewrite(users, [
      { id: 'g-sales', name: 'Sales & Marketing A', members: ids([...users.slice(1, 5), users[11]!]) },
      { id: 'g-ops', name: 'Ops A', members: ids(users.slice(5, 12)) },
    ]);
    tv.emulator.resetStats();
    const changed = await cycle();
    expect(changed.operations).toMatchObject({
      renameGroup: { applied: 1 },
      addGroupMembers: { applied: 1 },
      removeGroupMembers: { applied: 1 },
      createGroup: { planned: 0 },
      deleteGroup: { planned: 0 },
    });
    expect(tv.emulator.stats.byRoute['PATCH /Groups']).toBe(3);
    groups = groupsByName();
    expect(groups.has('Sales A')).toBe(false);
    expect(groups.get('Sales & Marketing A')).toEqual(mails([...users.slice(1, 5), users[11]!]));
  });

  it('takes over an existing TeamViewer group of the same name instead of duplicating it', async () => {
    const users = people(3, 41_000);
    const existing = await fetch(`${tv.baseUrl}/Groups`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/scim+json' },
      body: JSON.stringify({ schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName: 'Support B' }),
    }).then((r) => r.json() as Promise<{ id: string }>);
    const { cycle } = await startSync(users, [{ id: 'g-support', name: 'Support B', members: ids(users) }]);
    const report = await cycle();
    expect(report.operations.createGroup.planned).toBe(0);
    expect(report.operations.addGroupMembers.applied).toBe(1);
    const same = tv.emulator.dump().groups.filter((g) => g.displayName === 'Support B');
    expect(same).toHaveLength(1);
    expect(same[0]?.id).toBe(existing.id);
    expect(groupsByName().get('Support B')).toEqual(mails(users));
  });

  it('sends a 5,000-member group in batches, never as one full replace', async () => {
    const users = people(5000, 50_000);
    const { cycle, rewrite } = await startSync(users, [{ id: 'g-all', name: 'Everyone C', members: ids(users) }], {
      extra: '    groups: { batchSize: 100 }\n',
    });
    tv.emulator.resetStats();
    const first = await cycle();
    expect(first.outcome).toBe('succeeded');
    expect(groupsByName().get('Everyone C')).toHaveLength(5000);
    // One POST with the first 100 members, then 49 PATCH adds of 100 each.
    expect(tv.emulator.stats.byRoute['POST /Groups']).toBe(1);
    expect(tv.emulator.stats.byRoute['PATCH /Groups']).toBe(49);
    expect(tv.emulator.stats.byRoute['PUT /Groups'] ?? 0).toBe(0);

    // 1% churn: 50 leave, 50 join; requests follow the change, not the size.
    const stay = users.slice(50);
    const newcomers = people(50, 60_000);
    rewrite([...stay, ...newcomers], [{ id: 'g-all', name: 'Everyone C', members: ids([...stay, ...newcomers]) }]);
    tv.emulator.resetStats();
    const churn = await cycle();
    expect(churn.operations).toMatchObject({ addGroupMembers: { applied: 1 }, removeGroupMembers: { applied: 1 } });
    expect(tv.emulator.stats.byRoute['PATCH /Groups']).toBe(2);
    expect(groupsByName().get('Everyone C')).toEqual(mails([...stay, ...newcomers]));
  });

  it('deletes a managed group deleted in the IdP, and keeps members another group still holds', async () => {
    const users = people(6, 42_000);
    const { cycle, rewrite } = await startSync(users, [
      { id: 'g-a', name: 'Alpha D', members: ids(users.slice(0, 4)) },
      { id: 'g-b', name: 'Beta D', members: ids(users.slice(2, 6)) },
    ]);
    await cycle();
    // Alpha is deleted in the IdP; its members 0 and 1 are in no other group and leave the scope; 2 and 3 stay through Beta.
    rewrite(users.slice(2), [{ id: 'g-b', name: 'Beta D', members: ids(users.slice(2, 6)) }]);
    const report = await cycle();
    expect(report.operations).toMatchObject({ deleteGroup: { applied: 1 }, deactivateUser: { applied: 2 } });
    expect(groupsByName().has('Alpha D')).toBe(false);
    const state = new Map(tv.emulator.dump().users.map((u) => [u.userName, u.active]));
    expect(users.map((u) => state.get(u.email!))).toEqual([false, false, true, true, true, true]);
  });

  it('leaves a group removed from scope as it is when the IdP says it still exists', async () => {
    const users = people(4, 43_000);
    const { cycle, rewrite } = await startSync(users, [
      { id: 'g-x', name: 'Xray E', members: ids(users.slice(0, 2)) },
      { id: 'g-y', name: 'Yankee E', members: ids(users) },
    ]);
    await cycle();
    const runtime = daemons.at(-1)!.runtime('corp');
    // A source that knows the group still exists (e.g. unassigned from the app in Entra).
    runtime.sides.source.lookupGroups = async (gone) => new Map(gone.map((id) => [id, 'out-of-scope' as const]));
    rewrite(users, [{ id: 'g-y', name: 'Yankee E', members: ids(users) }]);
    const report = await cycle();
    expect(report.operations.deleteGroup.planned).toBe(0);
    expect(report.groups?.skipped).toEqual([expect.objectContaining({ reason: 'group-left-out-of-scope' })]);
    expect(groupsByName().get('Xray E')).toEqual(mails(users.slice(0, 2)));
    expect(report.operations.deactivateUser.planned).toBe(0);
  });

  it('leaves out members that could not be created, without failing the group', async () => {
    const users = [...people(2, 44_000), { id: 'blocked', email: 'blocked@elsewhere.example', displayName: 'Blocked User', active: true }];
    const { cycle } = await startSync(users, [{ id: 'g-m', name: 'Mixed F', members: ids(users) }]);
    const report = await cycle();
    expect(report.operations.createGroup.applied).toBe(1);
    expect(groupsByName().get('Mixed F')).toEqual(mails(users.slice(0, 2)));
    expect(report.groups?.skipped).toEqual([
      expect.objectContaining({ reason: 'member-not-provisioned', sourceUserId: 'blocked', message: expect.stringContaining('owned-outside-company') }),
    ]);
  });

  it('deletes no group and removes no member when the export turns empty, is cut short, or the read is partial; the report says so', async () => {
    const users = people(8, 46_000);
    const good: Group[] = [
      { id: 'g-a', name: 'Alpha G', members: ids(users.slice(0, 4)) },
      { id: 'g-b', name: 'Beta G', members: ids(users.slice(4, 8)) },
      { id: 'g-c', name: 'Gamma G', members: ids([users[0]!, users[4]!]) },
    ];
    const { cycle, rewrite } = await startSync(users, good);
    expect((await cycle()).operations.createGroup.applied).toBe(3);
    const before = groupsByName();
    const untouched = (report: CycleReport) => {
      expect(report.operations).toMatchObject({ deleteGroup: { planned: 0 }, removeGroupMembers: { planned: 0 }, deactivateUser: { planned: 0 } });
      expect(groupsByName()).toEqual(before);
      expect(
        tv.emulator
          .dump()
          .users.filter((u) => mails(users).includes(u.userName))
          .every((u) => u.active),
      ).toBe(true);
      expect(report.notices.join('\n')).toContain('No group is deleted or unlinked and no member removed this cycle');
    };

    // The export is emptied (an HR job wrote its header and stopped).
    rewrite([], []);
    const empty = await cycle();
    untouched(empty);
    expect(empty.deactivationsBlocked?.reason).toBe('source-empty');
    expect(empty.groups?.removalsBlocked).toMatchObject({ reason: 'source-empty', message: expect.stringContaining('no user in scope') });

    // The users file is cut short: the groups still name the two users it lost.
    rewrite(users.slice(0, 6), good.slice(0, 2));
    const cut = await cycle();
    untouched(cut);
    expect(cut.groups?.removalsBlocked?.reason).toBe('source-doubtful');

    // A source that reports its read as partial (a page failed), missing the same users and a group.
    const source = daemons.at(-1)!.runtime('corp').sides.source;
    const read = source.read.bind(source);
    source.read = async () => ({ ...(await read()), complete: false, incompleteReason: 'page 2 of the users failed' });
    rewrite(users.slice(0, 6), [good[0]!, { ...good[1]!, members: ids(users.slice(4, 6)) }]);
    const partial = await cycle();
    untouched(partial);
    expect(partial.deactivationsBlocked?.reason).toBe('source-read-incomplete');
    expect(partial.groups?.removalsBlocked).toMatchObject({ reason: 'source-read-incomplete', message: expect.stringContaining('page 2 of the users failed') });
    expect(partial.groups?.skipped).toEqual(expect.arrayContaining([expect.objectContaining({ reason: 'source-read-incomplete', sourceGroupId: 'g-c' })]));
  });

  it('deletes no group and removes no member when the export has no groups file', async () => {
    const users = people(6, 47_000);
    const { dir, cycle } = await startSync(users, [
      { id: 'g-a', name: 'Alpha H', members: ids(users.slice(0, 3)) },
      { id: 'g-b', name: 'Beta H', members: ids(users.slice(3)) },
    ]);
    await cycle();
    const before = groupsByName();
    // The exporter now writes users only (its manifest lists no groups file).
    rmSync(join(dir, 'groups.json'));
    writeFileExport(dir, { 'users.json': JSON.stringify(users) });
    const report = await cycle();
    expect(report.outcome).toBe('succeeded');
    expect(report.operations).toMatchObject({ deleteGroup: { planned: 0 }, removeGroupMembers: { planned: 0 }, deactivateUser: { planned: 0 } });
    expect(groupsByName()).toEqual(before);
    expect(report.groups?.removalsBlocked?.message).toContain('No group is deleted or unlinked and no member removed this cycle');
    expect(report.notices.join('\n')).toContain('No group is deleted or unlinked and no member removed this cycle');
    // The links stay: the groups are synced again as soon as the file is back.
    expect((await daemons.at(-1)!.runtime('corp').sides.state.loadGroupLinks()).size).toBe(2);
  });

  it('reports group sync as unavailable when the tenant has no /Groups, and keeps syncing users', async () => {
    const noGroups = await startEmulator({ groups: false });
    try {
      const users = people(3, 45_000);
      const { cycle } = await startSync(users, [{ id: 'g', name: 'G', members: ids(users) }], { baseUrl: noGroups.baseUrl });
      const report = await cycle();
      expect(report.outcome).toBe('succeeded');
      expect(report.operations.createUser.applied).toBe(3);
      expect(report.groups).toMatchObject({ status: 'unavailable', detail: expect.stringContaining('users are still synced') });
    } finally {
      await noGroups.emulator.stop();
    }
  });
});
