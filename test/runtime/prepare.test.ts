import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { SyncError } from '../../src/model/failure.js';
import type { TvGroup, TvUser } from '../../src/model/teamviewer.js';
import type { DirectoryRead } from '../../src/model/directory.js';
import { groupPhaseInput } from '../../src/plan/group-input.js';
import { planGroups, readAndPlan, type SyncSides } from '../../src/runtime/prepare.js';
import { MemorySyncState } from '../../src/store/sync-state.js';
import type { TeamViewerPort } from '../../src/teamviewer/port.js';
import { silentLog } from '../support/fixtures.js';

const sync = parseConfig('syncs:\n  - name: s\n    source: { type: file, path: . }\n    target: { token: "${T}" }\n', { env: { T: 'tok-123456' } }).syncs[0]!;
const tvUsers: TvUser[] = [
  { id: 'u1', userName: 'a@x.test', email: 'a@x.test', displayName: 'A', active: true },
  { id: 'u2', userName: 'gone@x.test', email: 'gone@x.test', displayName: 'Gone', active: true },
];

/** Planning only reads: a stub asked to write fails the test. */
const unexpected = (method: string) => async (): Promise<never> => {
  throw new Error(`${method} was not expected while planning`);
};

/** Sides whose TeamViewer answers as the stubs say; the IdP holds only a@x.test. */
async function sides(client: Partial<TeamViewerPort>): Promise<SyncSides> {
  const teamviewer: TeamViewerPort = {
    listUsers: async () => tvUsers,
    getTokenOwner: async () => ({ email: 'owner@x.test' }),
    listGroups: async (): Promise<TvGroup[]> => [],
    getUser: unexpected('getUser'),
    findUserByEmail: unexpected('findUserByEmail'),
    createUser: unexpected('createUser'),
    updateUser: unexpected('updateUser'),
    findGroupByName: unexpected('findGroupByName'),
    createGroup: unexpected('createGroup'),
    renameGroup: unexpected('renameGroup'),
    addGroupMembers: unexpected('addGroupMembers'),
    removeGroupMembers: unexpected('removeGroupMembers'),
    deleteGroup: unexpected('deleteGroup'),
    ...client,
  };
  const state = new MemorySyncState();
  await state.setLink('1', 'u1');
  await state.setLink('2', 'u2');
  return {
    sync,
    source: {
      kind: 'stub',
      read: async () => ({
        users: [{ id: '1', email: 'a@x.test', displayName: 'A', active: true }],
        groups: [{ id: 'g', name: 'G', memberIds: ['1'] }],
        complete: true,
        issues: [],
      }),
      check: async () => ({ ok: true, checks: [] }),
    },
    client: teamviewer,
    state,
    log: silentLog,
    now: Date.now,
    readBackoff: { attempts: 2, baseMs: 1, capMs: 2 },
  };
}

describe('readAndPlan', () => {
  it('deactivates a removed user when the token owner is known', async () => {
    const { plan } = await readAndPlan(await sides({}));
    expect(plan.operations).toMatchObject([{ kind: 'deactivateUser', tvUserId: 'u2' }]);
  });

  it('deactivates nobody when the token owner lookup failed (it could not be protected)', async () => {
    const { plan } = await readAndPlan(await sides({ getTokenOwner: async () => Promise.reject(new SyncError('transient', 'GET /account → 503')) }));
    expect(plan.operations).toEqual([]);
    expect(plan.deactivationsBlocked?.message).toMatch(/token could not be looked up.*set target\.tokenOwner/);
  });

  it('goes on with a notice when the token has no account permission', async () => {
    const { plan } = await readAndPlan(await sides({ getTokenOwner: async () => undefined }));
    expect(plan.operations).toHaveLength(1);
    expect(plan.notices.join(' ')).toMatch(/owner of the TeamViewer token is unknown/);
  });
});

describe('planGroups', () => {
  it.each([
    ['forbidden', 403],
    ['unavailable', 501],
    ['not-found', 404],
  ] as const)('reports groups unavailable, not a failed cycle, when /Groups answers %s', async (failureClass, status) => {
    const s = await sides({ listGroups: async () => Promise.reject(new SyncError(failureClass, `GET /Groups → ${status}`, { status })) });
    const { plan } = await readAndPlan(s);
    const phase = await planGroups(s, { groups: [], complete: true }, { plan, results: [] });
    expect(phase).toMatchObject({ status: 'unavailable', detail: expect.stringContaining('users are still synced') });
  });

  it('lets other failures through', async () => {
    const s = await sides({ listGroups: async () => Promise.reject(new SyncError('unauthorised', 'GET /Groups → 401')) });
    const { plan } = await readAndPlan(s);
    await expect(planGroups(s, { groups: [], complete: true }, { plan, results: [] })).rejects.toThrow('401');
  });
});

describe('the group phase guard', () => {
  /** IdP group g (user 1) linked to TeamViewer group t, which also holds u2: a removal, unless blocked. */
  async function groupSides(read: Partial<DirectoryRead>): Promise<SyncSides> {
    const s = await sides({ listGroups: async (): Promise<TvGroup[]> => [{ id: 't', displayName: 'G', memberIds: ['u1', 'u2'] }] });
    await s.state.setGroupLink('g', 't');
    const base = await s.source.read();
    s.source.read = async () => ({ ...base, ...read });
    return s;
  }

  it('removes members after a whole read', async () => {
    const s = await groupSides({});
    const prepared = await readAndPlan(s);
    const phase = await planGroups(s, groupPhaseInput(prepared.directory), { plan: prepared.plan, results: [] });
    expect(phase.status === 'synced' && phase.plan.operations).toMatchObject([{ kind: 'removeGroupMembers', memberIds: ['u2'] }]);
  });

  it('never removes a protected user or the token owner from a group, though the IdP group lacks them', async () => {
    // u2 (gone@x.test) is on the protect list; u3 owns the token. Neither is in IdP group g.
    const s = await sides({
      listUsers: async () => [...tvUsers, { id: 'u3', userName: 'owner@x.test', email: 'owner@x.test', displayName: 'Owner', active: true }],
      listGroups: async (): Promise<TvGroup[]> => [{ id: 't', displayName: 'G', memberIds: ['u1', 'u2', 'u3'] }],
    });
    s.sync = { ...s.sync, protect: ['Gone@x.test'] };
    await s.state.setGroupLink('g', 't');
    const prepared = await readAndPlan(s);
    expect(prepared.plan.protectedTvUserIds).toEqual(['u2', 'u3']);
    const phase = await planGroups(s, groupPhaseInput(prepared.directory), { plan: prepared.plan, results: [] });
    expect(phase.status === 'synced' && phase.plan.operations).toEqual([]);
  });

  it('removes no member when the read did not cover the groups', async () => {
    const s = await groupSides({ groupsComplete: false, groupsIncompleteReason: 'no groups file in the export' });
    const prepared = await readAndPlan(s);
    const phase = await planGroups(s, groupPhaseInput(prepared.directory), { plan: prepared.plan, results: [] });
    expect(phase.status === 'synced' && phase.plan.operations).toEqual([]);
    expect(phase.status === 'synced' && phase.plan.removalsBlocked).toMatchObject({
      reason: 'groups-read-incomplete',
      message: expect.stringContaining('no groups file in the export'),
    });
  });

  it('removes no member when the token owner lookup failed and so deactivations are blocked', async () => {
    const s = await groupSides({});
    s.client.getTokenOwner = async () => Promise.reject(new SyncError('transient', 'GET /account → 503'));
    const prepared = await readAndPlan(s);
    const phase = await planGroups(s, groupPhaseInput(prepared.directory), { plan: prepared.plan, results: [] });
    expect(phase.status === 'synced' && phase.plan.operations).toEqual([]);
    expect(phase.status === 'synced' && phase.plan.removalsBlocked?.message).toMatch(/token could not be looked up/);
  });

  it('reads again only the links its user phase touched, and sees the links that phase wrote', async () => {
    // IdP user 3 is new: the user phase creates it (the worker writes its link) and group g gains it.
    const s = await groupSides({
      users: [
        { id: '1', email: 'a@x.test', displayName: 'A', active: true },
        { id: '3', email: 'c@x.test', displayName: 'C', active: true },
      ],
      groups: [{ id: 'g', name: 'G', memberIds: ['1', '3'] }],
    });
    const prepared = await readAndPlan(s);
    expect(prepared.plan.operations.map((op) => [op.kind, op.sourceId])).toEqual(
      expect.arrayContaining([
        ['createUser', '3'],
        ['deactivateUser', '2'],
      ]),
    );
    await s.state.applyLinkChanges(prepared.plan.links);
    await s.state.setLink('3', 'u9');
    let fullReads = 0;
    const loadLinks = s.state.loadLinks.bind(s.state);
    s.state.loadLinks = () => {
      fullReads++;
      return loadLinks();
    };
    const results = [
      { sourceId: '3', kind: 'createUser', status: 'applied' },
      { sourceId: '2', kind: 'deactivateUser', status: 'applied' },
    ];
    const phase = await planGroups(s, groupPhaseInput(prepared.directory), { plan: prepared.plan, results }, { linksBefore: prepared.links });
    expect(fullReads).toBe(0);
    expect(prepared.links.get('3')).toBe('u9');
    expect(phase.status === 'synced' && phase.plan.operations).toEqual(
      expect.arrayContaining([expect.objectContaining({ kind: 'addGroupMembers', tvGroupId: 't', memberIds: ['u9'] })]),
    );
    // The same phase planned from every stored link.
    const reloaded = await planGroups(s, groupPhaseInput(prepared.directory), { plan: prepared.plan, results });
    expect(fullReads).toBe(1);
    expect(reloaded).toEqual(phase);
  });

  it('stores a bounded record of a read with 10 MB values', async () => {
    const huge = 'x'.repeat(10 * 1024 * 1024);
    const s = await groupSides({
      users: [
        { id: '1', email: 'a@x.test', displayName: 'A', active: true },
        { id: '3', email: 'c@x.test', displayName: huge, active: true },
      ],
      groups: [
        { id: 'g', name: 'G', memberIds: ['1', huge] },
        { id: 'g2', name: huge, memberIds: ['1'] },
      ],
      complete: false,
      incompleteReason: huge,
      issues: [{ kind: 'user', objectId: '4', reason: huge }],
    });
    const prepared = await readAndPlan(s);
    const stored = groupPhaseInput(prepared.directory);
    expect(JSON.stringify(prepared.plan).length).toBeLessThan(10_000);
    expect(JSON.stringify(stored).length).toBeLessThan(10_000);
    const phase = await planGroups(s, stored, { plan: prepared.plan, results: [] });
    expect(JSON.stringify(phase).length).toBeLessThan(10_000);
  });
});

describe('reads take the cycle’s abort signal', () => {
  it('ends a read that hangs (and its retries) as soon as the cycle is stopped, with the stop’s own reason', async () => {
    const { createServer } = await import('node:http');
    const { TeamViewerScimClient: Client } = await import('../../src/teamviewer/scim-client.js');
    // A TeamViewer that accepts the request and never answers.
    const server = createServer(() => undefined);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    try {
      const client = new Client({ baseUrl: `http://127.0.0.1:${port}/scim/v2`, token: 'tok-123456', timeoutMs: 60_000 });
      const s = await sides({});
      s.client = client;
      s.readBackoff = { attempts: 5, baseMs: 10_000, capMs: 10_000 };
      const controller = new AbortController();
      const started = Date.now();
      setTimeout(() => controller.abort(new Error('shutting down')), 100);
      await expect(readAndPlan(s, { signal: controller.signal })).rejects.toThrow('shutting down');
      // Neither the 60 s request deadline nor a 10 s retry wait was sat out.
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
