import { generateKeyPairSync, randomBytes } from 'node:crypto';
import nock from 'nock';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { entraSourceConfigSchema } from '../../../src/connectors/entra/config.js';
import { createEntraSource, type EntraSourceDeps } from '../../../src/connectors/entra/source.js';
import type { DirectoryRead } from '../../../src/model/directory.js';
import { SyncError } from '../../../src/model/failure.js';
import { SourceReadError } from '../../../src/connectors/source.js';
import { MemoryStateStore } from '../../../src/store/memory-state.js';
import { capturedLogger, echoedForms, expectNoLeak } from '../../support/leaks.js';
import { tricklingServer } from '../../support/slow-server.js';
import { assignment, GRAPH, graph, page, SECRET, user } from './support.js';

const LOGIN = 'https://login.microsoftonline.com';
const USER_SELECT = 'id,userPrincipalName,mail,displayName,givenName,surname,accountEnabled,preferredLanguage';
const HOUR = 3_600_000;

const credential: NonNullable<EntraSourceDeps['credential']> = {
  getToken: async () => ({ token: 'test-token', expiresOnTimestamp: Date.now() + HOUR }),
};

function configOf(overrides: Record<string, unknown> = {}) {
  return entraSourceConfigSchema.parse({
    type: 'entra',
    tenantId: 'tid',
    clientId: 'cid',
    clientSecret: SECRET,
    scope: { mode: 'assignment', servicePrincipalId: 'sp1' },
    ...overrides,
  });
}

function sourceOf(overrides: Record<string, unknown> = {}, deps: Partial<EntraSourceDeps> = {}) {
  const state = deps.state ?? new MemoryStateStore();
  const source = createEntraSource(configOf(overrides), {
    state,
    log: pino({ level: 'silent' }),
    credential,
    backoff: { attempts: 3, baseMs: 1, capMs: 5, maxWaitMs: 2000 },
    ...deps,
  });
  return { source, state };
}

const typed = (type: 'user' | 'group' | 'device', body: Record<string, unknown>) => ({ '@odata.type': `#microsoft.graph.${type}`, ...body });

/** The "sync from now" links a full read takes before listing. */
function mockLatestLinks(scope: nock.Scope, users = 'U1', groups = 'G1'): void {
  scope
    .get('/v1.0/users/delta')
    .query({ $select: USER_SELECT, $deltaToken: 'latest' })
    .reply(200, page([], { delta: `${GRAPH}/v1.0/users/delta?$deltatoken=${users}` }))
    .get('/v1.0/groups/delta')
    .query({ $select: 'displayName,members', $deltaToken: 'latest' })
    .reply(200, page([], { delta: `${GRAPH}/v1.0/groups/delta?$deltatoken=${groups}` }));
}

function mockAssignments(scope: nock.Scope, rows: unknown[]): void {
  scope
    .get('/v1.0/servicePrincipals/sp1/appRoleAssignedTo')
    .query({ $select: 'principalId,principalType,principalDisplayName', $top: '999' })
    .reply(200, page(rows));
}

function mockMembers(scope: nock.Scope, groupId: string, members: unknown[]): void {
  scope.get(`/v1.0/groups/${groupId}/members/microsoft.graph.user`).query({ $select: USER_SELECT, $top: '999' }).reply(200, page(members));
}

const byId = (read: DirectoryRead) => Object.fromEntries(read.users.map((u) => [u.id, u]));
const membersOf = (read: DirectoryRead) => Object.fromEntries(read.groups.map((g) => [g.name, [...g.memberIds].sort()]));

beforeAll(() => nock.disableNetConnect());
afterEach(() => {
  nock.cleanAll();
});
afterAll(() => nock.enableNetConnect());

describe('Entra full read', () => {
  it('reads assigned users and the direct members of assigned groups across pages', async () => {
    const scope = graph();
    mockLatestLinks(scope);
    scope
      .get('/v1.0/servicePrincipals/sp1/appRoleAssignedTo')
      .query({ $select: 'principalId,principalType,principalDisplayName', $top: '999' })
      .reply(
        200,
        page([assignment('u1', 'User', 'User u1'), assignment('g1', 'Group', 'Sales')], {
          next: `${GRAPH}/v1.0/servicePrincipals/sp1/appRoleAssignedTo?$select=principalId,principalType,principalDisplayName&$top=999&$skiptoken=X%27A1%3d%27`,
        }),
      )
      .get('/v1.0/servicePrincipals/sp1/appRoleAssignedTo')
      .query({ $select: 'principalId,principalType,principalDisplayName', $top: '999', $skiptoken: "X'A1='" })
      .reply(200, page([assignment('g2', 'Group', 'Ops'), assignment('sp9', 'ServicePrincipal', 'Robot'), assignment('u1', 'User', 'User u1')]))
      .get('/v1.0/groups/g1/members/microsoft.graph.user')
      .query({ $select: USER_SELECT, $top: '999' })
      .reply(
        200,
        page([user('u2'), user('u3')], { next: `${GRAPH}/v1.0/groups/g1/members/microsoft.graph.user?$select=${USER_SELECT}&$top=999&$skiptoken=M2` }),
      )
      .get('/v1.0/groups/g1/members/microsoft.graph.user')
      .query({ $select: USER_SELECT, $top: '999', $skiptoken: 'M2' })
      .reply(200, page([user('u4', { accountEnabled: false, preferredLanguage: null })]))
      .get('/v1.0/users/u1')
      .query({ $select: USER_SELECT })
      .reply(200, { '@odata.context': `${GRAPH}/v1.0/$metadata#users/$entity`, ...user('u1') });
    mockMembers(scope, 'g2', [user('u3'), user('u5')]);

    const read = await sourceOf().source.read();

    expect(scope.isDone()).toBe(true);
    expect(read.complete).toBe(true);
    expect(read.issues).toEqual([]);
    expect(read.users.map((u) => u.id).sort()).toEqual(['u1', 'u2', 'u3', 'u4', 'u5']);
    expect(byId(read).u1).toEqual({
      id: 'u1',
      email: 'u1@contoso.test',
      displayName: 'User u1',
      givenName: 'Given',
      familyName: 'Sur-u1',
      active: true,
      preferredLanguage: 'en-US',
    });
    expect(byId(read).u4).toMatchObject({ active: false });
    expect(byId(read).u4).not.toHaveProperty('preferredLanguage');
    expect(read.groups.map((g) => [g.id, g.name])).toEqual([
      ['g1', 'Sales'],
      ['g2', 'Ops'],
    ]);
    expect(membersOf(read)).toEqual({ Sales: ['u2', 'u3', 'u4'], Ops: ['u3', 'u5'] });
  });

  it('reads configured groups, takes mail as the e-mail when asked, and fails on a group that does not exist', async () => {
    const scope = graph();
    mockLatestLinks(scope);
    scope.get('/v1.0/groups/g1').query({ $select: 'id,displayName' }).reply(200, { id: 'g1', displayName: 'Engineering' });
    mockMembers(scope, 'g1', [user('u1'), user('u2', { mail: null })]);
    const read = await sourceOf({ scope: { mode: 'groups', groupIds: ['g1'] }, emailAttribute: 'mail' }).source.read();
    expect(byId(read).u1?.email).toBe('u1.mail@contoso.test');
    expect(byId(read).u2).not.toHaveProperty('email');
    expect(membersOf(read)).toEqual({ Engineering: ['u1', 'u2'] });

    const missing = graph();
    mockLatestLinks(missing);
    missing
      .get('/v1.0/groups/gone')
      .query(true)
      .reply(404, { error: { code: 'Request_ResourceNotFound', message: "Resource 'gone' does not exist." } });
    const err = await sourceOf({ scope: { mode: 'groups', groupIds: ['gone'] } })
      .source.read()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourceReadError);
    expect((err as Error).message).toMatch(/group gone in scope.groupIds was not found/);
  });

  it('flattens nested groups through transitiveMembers when nestedGroups is on', async () => {
    const scope = graph();
    mockLatestLinks(scope);
    scope.get('/v1.0/groups/g1').query(true).reply(200, { id: 'g1', displayName: 'Engineering' });
    scope
      .get('/v1.0/groups/g1/transitiveMembers')
      .query({ $select: USER_SELECT, $top: '999' })
      .reply(
        200,
        page([
          typed('user', user('u1')),
          typed('group', { id: 'g3', displayName: 'Platform' }),
          typed('user', user('u2')),
          typed('device', { id: 'd1', displayName: 'Laptop', accountEnabled: true }),
        ]),
      );
    const read = await sourceOf({ scope: { mode: 'groups', groupIds: ['g1'] }, nestedGroups: true }).source.read();
    expect(scope.isDone()).toBe(true);
    expect(read.users.map((u) => u.id)).toEqual(['u1', 'u2']);
    expect(membersOf(read)).toEqual({ Engineering: ['u1', 'u2'] });
  });

  it('skips a malformed record with an issue, and fails the read on a malformed page', async () => {
    const scope = graph();
    mockLatestLinks(scope);
    mockAssignments(scope, [assignment('g1', 'Group', 'Sales'), { principalType: 'User' }]);
    mockMembers(scope, 'g1', [user('u1'), user('u2', { accountEnabled: 'yes' }), { displayName: 'no id' }]);
    const read = await sourceOf().source.read();
    expect(read.users.map((u) => u.id)).toEqual(['u1']);
    expect(membersOf(read)).toEqual({ Sales: ['u1'] });
    expect(read.issues).toEqual([
      expect.objectContaining({ kind: 'membership', reason: expect.stringMatching(/app assignment could not be read/) }),
      expect.objectContaining({ kind: 'user', objectId: 'u2', reason: expect.stringMatching(/accountEnabled/) }),
      expect.objectContaining({ kind: 'membership', objectId: 'g1', reason: expect.stringMatching(/member of group Sales could not be read/) }),
    ]);

    const bad = graph();
    mockLatestLinks(bad);
    mockAssignments(bad, [assignment('g1', 'Group', 'Sales')]);
    bad.get('/v1.0/groups/g1/members/microsoft.graph.user').query(true).reply(200, { value: 'not a list' });
    await expect(sourceOf().source.read()).rejects.toThrow(/reading group g1: Graph sent a page tvsync cannot read/);
  });

  it('throws SourceReadError when page 3 of 5 keeps failing, and saves no state', async () => {
    const scope = graph();
    mockLatestLinks(scope);
    mockAssignments(scope, [assignment('g1', 'Group', 'Sales')]);
    const link = (n: number) => `${GRAPH}/v1.0/groups/g1/members/microsoft.graph.user?$select=${USER_SELECT}&$top=999&$skiptoken=P${n}`;
    scope
      .get('/v1.0/groups/g1/members/microsoft.graph.user')
      .query({ $select: USER_SELECT, $top: '999' })
      .reply(200, page([user('u1')], { next: link(2) }));
    scope
      .get('/v1.0/groups/g1/members/microsoft.graph.user')
      .query({ $select: USER_SELECT, $top: '999', $skiptoken: 'P2' })
      .reply(200, page([user('u2')], { next: link(3) }));
    scope
      .get('/v1.0/groups/g1/members/microsoft.graph.user')
      .query({ $select: USER_SELECT, $top: '999', $skiptoken: 'P3' })
      .times(3)
      .reply(500, { error: { code: 'UnknownError', message: 'Backend unavailable' } });
    const { source, state } = sourceOf();
    const err = await source.read().catch((e: unknown) => e);
    expect(scope.isDone()).toBe(true);
    expect(err).toBeInstanceOf(SourceReadError);
    expect((err as Error).message).toMatch(/reading group g1: Graph failed \(HTTP 500 UnknownError/);
    expect((err as SourceReadError).cause).toBeInstanceOf(SyncError);
    expect(await state.get('entra.snapshot')).toBeUndefined();
  });

  it('retries 429 after Retry-After, 503 and a connection reset, then completes', async () => {
    const scope = graph();
    mockLatestLinks(scope);
    scope
      .get('/v1.0/servicePrincipals/sp1/appRoleAssignedTo')
      .query(true)
      .reply(429, { error: { code: 'TooManyRequests', message: 'Too many requests' } }, { 'Retry-After': '1' })
      .get('/v1.0/servicePrincipals/sp1/appRoleAssignedTo')
      .query(true)
      .reply(200, page([assignment('g1', 'Group', 'Sales')]))
      .get('/v1.0/groups/g1/members/microsoft.graph.user')
      .query(true)
      .reply(503, { error: { code: 'ServiceUnavailable', message: 'Try later' } })
      .get('/v1.0/groups/g1/members/microsoft.graph.user')
      .query(true)
      .replyWithError({ code: 'ECONNRESET', message: 'socket hang up' });
    mockMembers(scope, 'g1', [user('u1')]);
    const started = Date.now();
    const read = await sourceOf().source.read();
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(scope.isDone()).toBe(true);
    expect(read.users.map((u) => u.id)).toEqual(['u1']);
  });

  it('gives up on endless throttling with a rate-limited cause', async () => {
    const scope = graph();
    mockLatestLinks(scope);
    scope.get('/v1.0/servicePrincipals/sp1/appRoleAssignedTo').query(true).times(3).reply(429, {}, { 'Retry-After': '0' });
    const err = await sourceOf()
      .source.read()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourceReadError);
    expect((err as SourceReadError).cause).toMatchObject({ failureClass: 'rate-limited', status: 429 });
  });

  it('stops at the page cap and refuses links to another host', async () => {
    const capped = graph();
    mockLatestLinks(capped);
    mockAssignments(capped, [assignment('g1', 'Group', 'Sales')]);
    capped
      .get('/v1.0/groups/g1/members/microsoft.graph.user')
      .query(true)
      .times(2)
      .reply(200, page([user('u1')], { next: `${GRAPH}/v1.0/groups/g1/members/microsoft.graph.user?$skiptoken=again` }));
    await expect(sourceOf({ maxPages: 2 }).source.read()).rejects.toThrow(/stopped after 2 pages \(maxPages\)/);

    const elsewhere = graph();
    mockLatestLinks(elsewhere);
    mockAssignments(elsewhere, [assignment('g1', 'Group', 'Sales')]);
    elsewhere
      .get('/v1.0/groups/g1/members/microsoft.graph.user')
      .query(true)
      .reply(200, page([user('u1')], { next: 'https://collector.example/v1.0/steal' }));
    await expect(sourceOf().source.read()).rejects.toThrow(/link to https:\/\/collector.example.*not following it/);
  });
});

describe('Entra incremental read', () => {
  async function fullReadFirst(overrides: Record<string, unknown> = {}, clock = { now: 0 }) {
    const scope = graph();
    mockLatestLinks(scope);
    mockAssignments(scope, [assignment('u1', 'User', 'User u1'), assignment('g1', 'Group', 'Sales'), assignment('g2', 'Group', 'Ops')]);
    mockMembers(scope, 'g1', [user('u2'), user('u3'), user('u4')]);
    mockMembers(scope, 'g2', [user('u5')]);
    scope.get('/v1.0/users/u1').query(true).reply(200, user('u1'));
    const made = sourceOf(overrides, { now: () => clock.now });
    await made.source.read();
    expect(scope.isDone()).toBe(true);
    return made;
  }

  it('applies user and group changes, re-lists only the changed group, and returns the whole scope', async () => {
    const { source } = await fullReadFirst();
    const delta = graph().matchHeader('prefer', 'odata.maxpagesize=999');
    delta
      .get('/v1.0/users/delta')
      .query({ $deltatoken: 'U1' })
      .reply(
        200,
        page([user('u2', { displayName: 'Renamed' }), { id: 'u3', '@removed': { reason: 'deleted' } }], { next: `${GRAPH}/v1.0/users/delta?$skiptoken=US2` }),
      )
      .get('/v1.0/users/delta')
      .query({ $skiptoken: 'US2' })
      .reply(200, page([user('u99'), user('u5', { accountEnabled: false })], { delta: `${GRAPH}/v1.0/users/delta?$deltatoken=U2` }))
      .get('/v1.0/groups/delta')
      .query({ $deltatoken: 'G1' })
      .reply(
        200,
        page([{ id: 'g1', displayName: 'Sales', 'members@delta': [typed('user', { id: 'u6' })] }], { next: `${GRAPH}/v1.0/groups/delta?$skiptoken=GS2` }),
      )
      .get('/v1.0/groups/delta')
      .query({ $skiptoken: 'GS2' })
      .reply(
        200,
        page(
          [
            { id: 'g1', displayName: 'Sales', 'members@delta': [typed('user', { id: 'u4', '@removed': { reason: 'deleted' } })] },
            { id: 'g7', displayName: 'Unrelated', 'members@delta': [] },
          ],
          { delta: `${GRAPH}/v1.0/groups/delta?$deltatoken=G2` },
        ),
      );
    const scope = graph();
    mockAssignments(scope, [assignment('u1', 'User', 'User u1'), assignment('g1', 'Group', 'Sales'), assignment('g2', 'Group', 'Ops')]);
    mockMembers(scope, 'g1', [user('u2', { displayName: 'Renamed' }), user('u6')]);

    const read = await source.read();
    expect(delta.isDone() && scope.isDone()).toBe(true);
    expect(read.complete).toBe(true);
    expect(read.users.map((u) => u.id).sort()).toEqual(['u1', 'u2', 'u5', 'u6']);
    expect(byId(read).u2?.displayName).toBe('Renamed');
    expect(byId(read).u5?.active).toBe(false);
    expect(membersOf(read)).toEqual({ Sales: ['u2', 'u6'], Ops: ['u5'] });

    // The next cycle follows the new links; nothing changed, nothing is re-listed.
    const quiet = graph();
    quiet
      .get('/v1.0/users/delta')
      .query({ $deltatoken: 'U2' })
      .reply(200, page([], { delta: `${GRAPH}/v1.0/users/delta?$deltatoken=U3` }))
      .get('/v1.0/groups/delta')
      .query({ $deltatoken: 'G2' })
      .reply(200, page([], { delta: `${GRAPH}/v1.0/groups/delta?$deltatoken=G3` }));
    mockAssignments(quiet, [assignment('u1', 'User', 'User u1'), assignment('g1', 'Group', 'Sales'), assignment('g2', 'Group', 'Ops')]);
    const again = await source.read();
    expect(quiet.isDone()).toBe(true);
    expect(again.users).toEqual(read.users);
    expect(again.groups).toEqual(read.groups);
  });

  it('re-lists a flattened group when a group nested in it changes', async () => {
    const overrides = { scope: { mode: 'groups', groupIds: ['g1'] }, nestedGroups: true };
    const first = graph();
    mockLatestLinks(first);
    first.get('/v1.0/groups/g1').query(true).reply(200, { id: 'g1', displayName: 'Engineering' });
    first
      .get('/v1.0/groups/g1/transitiveMembers')
      .query(true)
      .reply(200, page([typed('user', user('u1')), typed('group', { id: 'g3' }), typed('user', user('u2'))]));
    const { source } = sourceOf(overrides);
    await source.read();

    const scope = graph();
    scope
      .get('/v1.0/users/delta')
      .query({ $deltatoken: 'U1' })
      .reply(200, page([], { delta: `${GRAPH}/v1.0/users/delta?$deltatoken=U2` }))
      .get('/v1.0/groups/delta')
      .query({ $deltatoken: 'G1' })
      .reply(
        200,
        page([{ id: 'g3', displayName: 'Platform', 'members@delta': [typed('user', { id: 'u7' })] }], { delta: `${GRAPH}/v1.0/groups/delta?$deltatoken=G2` }),
      )
      .get('/v1.0/groups/g1/transitiveMembers')
      .query({ $select: USER_SELECT, $top: '999' })
      .reply(200, page([typed('user', user('u1')), typed('group', { id: 'g3' }), typed('user', user('u2')), typed('user', user('u7'))]));
    const read = await source.read();
    expect(scope.isDone()).toBe(true);
    expect(membersOf(read)).toEqual({ Engineering: ['u1', 'u2', 'u7'] });
  });

  it.each([
    ['410 Gone', 410, { error: { code: 'Gone', message: 'Delta token expired' } }],
    ['syncStateNotFound', 400, { error: { code: 'syncStateNotFound', message: 'The delta token is no longer valid' } }],
  ])('falls back to a full read when the delta link has expired (%s)', async (_name, status, body) => {
    const { source } = await fullReadFirst();
    const scope = graph();
    scope
      .get('/v1.0/users/delta')
      .query({ $deltatoken: 'U1' })
      .reply(status, body, { Location: `${GRAPH}/v1.0/users/delta` });
    mockLatestLinks(scope, 'U9', 'G9');
    mockAssignments(scope, [assignment('g1', 'Group', 'Sales')]);
    mockMembers(scope, 'g1', [user('u2')]);
    const read = await source.read();
    expect(scope.isDone()).toBe(true);
    expect(read.users.map((u) => u.id)).toEqual(['u2']);

    // The fresh links were saved.
    const next = graph();
    next
      .get('/v1.0/users/delta')
      .query({ $deltatoken: 'U9' })
      .reply(200, page([], { delta: `${GRAPH}/v1.0/users/delta?$deltatoken=U10` }))
      .get('/v1.0/groups/delta')
      .query({ $deltatoken: 'G9' })
      .reply(200, page([], { delta: `${GRAPH}/v1.0/groups/delta?$deltatoken=G10` }));
    mockAssignments(next, [assignment('g1', 'Group', 'Sales')]);
    await source.read();
    expect(next.isDone()).toBe(true);
  });

  it('reads everything when asked, when the interval has passed, and when the scope changed', async () => {
    const clock = { now: 0 };
    const { source, state } = await fullReadFirst({}, clock);
    const expectFullRead = async (read: () => Promise<unknown>) => {
      const scope = graph();
      mockLatestLinks(scope);
      mockAssignments(scope, [assignment('g1', 'Group', 'Sales')]);
      mockMembers(scope, 'g1', [user('u2')]);
      await read();
      expect(scope.isDone()).toBe(true);
    };
    await expectFullRead(() => source.read({ mode: 'full' }));
    clock.now = 24 * HOUR;
    await expectFullRead(() => source.read());
    const widened = sourceOf({ nestedGroups: true }, { state, now: () => clock.now }).source;
    const scope = graph();
    mockLatestLinks(scope);
    mockAssignments(scope, [assignment('g1', 'Group', 'Sales')]);
    scope
      .get('/v1.0/groups/g1/transitiveMembers')
      .query(true)
      .reply(200, page([typed('user', user('u2'))]));
    await widened.read();
    expect(scope.isDone()).toBe(true);
  });
});

describe('Entra group lookup', () => {
  /** Graph's answer for a directory object that does not exist (deleted, or soft-deleted). */
  const notFound = (id: string) => ({
    error: {
      code: 'Request_ResourceNotFound',
      message: `Resource '${id}' does not exist or one of its queried reference-property objects are not present.`,
      innerError: {
        date: '2026-10-01T10:00:00',
        'request-id': 'b1f0c7a2-4d1e-4c1a-9b6e-2f6d1e0a9c11',
        'client-request-id': 'b1f0c7a2-4d1e-4c1a-9b6e-2f6d1e0a9c11',
      },
    },
  });

  it('says deleted for a group Graph does not know and out-of-scope for one it still has', async () => {
    const scope = graph();
    scope
      .get('/v1.0/groups/g-gone')
      .query({ $select: 'id' })
      .reply(404, notFound('g-gone'))
      .get('/v1.0/groups/g-kept')
      .query({ $select: 'id' })
      .reply(200, { '@odata.context': `${GRAPH}/v1.0/$metadata#groups(id)/$entity`, id: 'g-kept' });
    const answers = await sourceOf().source.lookupGroups?.(['g-gone', 'g-kept']);
    expect(scope.isDone()).toBe(true);
    expect(answers).toEqual(
      new Map([
        ['g-gone', 'deleted'],
        ['g-kept', 'out-of-scope'],
      ]),
    );
  });

  it('knows a group the last delta round removed without asking Graph', async () => {
    const first = graph();
    mockLatestLinks(first);
    mockAssignments(first, [assignment('g1', 'Group', 'Sales'), assignment('g2', 'Group', 'Ops')]);
    mockMembers(first, 'g1', [user('u1')]);
    mockMembers(first, 'g2', [user('u2')]);
    const { source } = sourceOf();
    await source.read();
    expect(first.isDone()).toBe(true);

    const delta = graph();
    delta
      .get('/v1.0/users/delta')
      .query({ $deltatoken: 'U1' })
      .reply(200, page([], { delta: `${GRAPH}/v1.0/users/delta?$deltatoken=U2` }))
      .get('/v1.0/groups/delta')
      .query({ $deltatoken: 'G1' })
      .reply(200, page([{ id: 'g2', '@removed': { reason: 'changed' } }], { delta: `${GRAPH}/v1.0/groups/delta?$deltatoken=G2` }));
    mockAssignments(delta, [assignment('g1', 'Group', 'Sales')]);
    const read = await source.read();
    expect(delta.isDone()).toBe(true);
    expect(read.groups.map((g) => g.id)).toEqual(['g1']);

    // No mock for /groups/g2: a request would fail the lookup.
    expect(await source.lookupGroups?.(['g2'])).toEqual(new Map([['g2', 'deleted']]));
  });

  it('throws when Graph keeps failing, without the secret in the error', async () => {
    const scope = graph();
    scope
      .get('/v1.0/groups/g1')
      .query({ $select: 'id' })
      .times(3)
      .reply(500, { error: { code: 'UnknownError', message: `Backend unavailable (${SECRET})`, innerError: { date: '2026-10-01T10:00:00' } } });
    const err = await sourceOf()
      .source.lookupGroups?.(['g1'])
      .catch((e: unknown) => e);
    expect(scope.isDone()).toBe(true);
    expect(err).toBeInstanceOf(SyncError);
    expect((err as SyncError).message).toMatch(/looking up group g1 in Entra: Graph failed \(HTTP 500 UnknownError/);
    expect(err).toMatchObject({ failureClass: 'transient', status: 500 });
    const e = err as Error;
    for (const text of [e.message, e.stack ?? '', JSON.stringify(e)]) expect(text).not.toContain(SECRET);
  });
});

describe('Entra check', () => {
  it('signs in, reads a page of users, the assignments and one assigned group', async () => {
    const scope = graph();
    scope
      .get('/v1.0/users')
      .query({ $select: 'id', $top: '5' })
      .reply(200, page([{ id: 'u1' }, { id: 'u2' }]))
      .get('/v1.0/servicePrincipals/sp1/appRoleAssignedTo')
      .query({ $select: 'principalId,principalType', $top: '5' })
      .reply(200, page([assignment('u1', 'User', 'User u1'), assignment('g1', 'Group', 'Sales')]))
      .get('/v1.0/groups/g1')
      .query(true)
      .reply(200, { id: 'g1', displayName: 'Sales' })
      .get('/v1.0/groups/g1/members/microsoft.graph.user')
      .query({ $select: 'id', $top: '5' })
      .reply(200, page([{ id: 'u2' }]));
    const result = await sourceOf().source.check();
    expect(scope.isDone()).toBe(true);
    expect(result.ok).toBe(true);
    expect(result.checks.map((c) => [c.name, c.ok])).toEqual([
      ['sign in', true],
      ['read users', true],
      ['read app assignments', true],
      ['read group g1', true],
    ]);
    expect(result.checks[3]?.detail).toMatch(/group "Sales": members can be read/);
  });

  it('reports a missing permission and an unreachable Graph without throwing', async () => {
    const scope = graph();
    scope
      .get('/v1.0/users')
      .query(true)
      .times(2)
      .replyWithError({ code: 'ECONNREFUSED', message: 'connect ECONNREFUSED' })
      .get('/v1.0/servicePrincipals/sp1/appRoleAssignedTo')
      .query(true)
      .reply(403, { error: { code: 'Authorization_RequestDenied', message: 'Insufficient privileges to complete the operation.' } });
    const result = await sourceOf().source.check();
    expect(scope.isDone()).toBe(true);
    expect(result.ok).toBe(false);
    expect(result.checks[1]).toMatchObject({ name: 'read users', ok: false, detail: expect.stringMatching(/no answer from https:\/\/graph.microsoft.com/) });
    expect(result.checks[2]).toMatchObject({ name: 'read app assignments', ok: false, detail: expect.stringMatching(/HTTP 403.*Application\.Read\.All/) });
  });
});

describe('Entra sign-in', () => {
  const tokenReply = { token_type: 'Bearer', expires_in: 3600, ext_expires_in: 3600, access_token: 'aad-token' };

  it('gets a token with client credentials and sends it to Graph, also in a national cloud', async () => {
    const login = nock(LOGIN)
      .post(
        '/tid/oauth2/v2.0/token',
        (body: Record<string, string>) =>
          body.grant_type === 'client_credentials' && body.client_id === 'cid' && body.client_secret === SECRET && body.scope === `${GRAPH}/.default`,
      )
      .query(true)
      .reply(200, tokenReply);
    const api = nock(GRAPH).matchHeader('authorization', 'Bearer aad-token').get('/v1.0/users').query(true).reply(200, page([]));
    api.get('/v1.0/servicePrincipals/sp1/appRoleAssignedTo').query(true).reply(200, page([]));
    const result = await sourceOf({}, { credential: undefined }).source.check();
    expect(login.isDone() && api.isDone()).toBe(true);
    expect(result.ok).toBe(true);

    const usLogin = nock('https://login.microsoftonline.us')
      .post('/tid/oauth2/v2.0/token', (body: Record<string, string>) => body.scope === 'https://graph.microsoft.us/.default')
      .query(true)
      .reply(200, tokenReply);
    const usApi = nock('https://graph.microsoft.us').matchHeader('authorization', 'Bearer aad-token').get('/v1.0/users').query(true).reply(200, page([]));
    usApi.get('/v1.0/servicePrincipals/sp1/appRoleAssignedTo').query(true).reply(200, page([]));
    const us = sourceOf({ graphBaseUrl: 'https://graph.microsoft.us', authorityHost: 'https://login.microsoftonline.us' }, { credential: undefined }).source;
    expect((await us.check()).ok).toBe(true);
    expect(usLogin.isDone() && usApi.isDone()).toBe(true);
  });

  it('signs in with a certificate through a client assertion', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const certPem = `-----BEGIN CERTIFICATE-----\n${randomBytes(256).toString('base64')}\n-----END CERTIFICATE-----`;
    const login = nock(LOGIN)
      .post(
        '/tid/oauth2/v2.0/token',
        (body: Record<string, string>) =>
          body.client_assertion_type === 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer' &&
          /^ey/.test(body.client_assertion ?? '') &&
          !('client_secret' in body),
      )
      .query(true)
      .reply(200, tokenReply);
    const api = nock(GRAPH).matchHeader('authorization', 'Bearer aad-token');
    api.get('/v1.0/users').query(true).reply(200, page([]));
    api.get('/v1.0/groups/g1').query(true).reply(200, { id: 'g1', displayName: 'Sales' });
    api.get('/v1.0/groups/g1/members/microsoft.graph.user').query(true).reply(200, page([]));
    const overrides = { clientSecret: undefined, certificate: certPem, privateKey: keyPem, scope: { mode: 'groups', groupIds: ['g1'] } };
    const result = await sourceOf(overrides, { credential: undefined }).source.check();
    expect(login.isDone() && api.isDone()).toBe(true);
    expect(result.ok).toBe(true);
  });

  it('keeps the secret out of a failed read', async () => {
    nock(LOGIN)
      .post('/tid/oauth2/v2.0/token')
      .query(true)
      .reply(401, { error: 'invalid_client', error_description: `AADSTS7000215: Invalid client secret provided (${SECRET}).`, error_codes: [7000215] });
    const err = await sourceOf({}, { credential: undefined })
      .source.read()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourceReadError);
    const readError = err as SourceReadError;
    expect(readError.message).toMatch(/signing in to Entra tenant tid as app cid failed: .*AADSTS7000215/);
    expect((readError.cause as SyncError).failureClass).toBe('unauthorised');
    for (const text of [readError.message, readError.stack ?? '', JSON.stringify(readError), String((readError.cause as Error).stack)]) {
      expect(text).not.toContain(SECRET);
    }

    nock(LOGIN)
      .post('/tid/oauth2/v2.0/token')
      .query(true)
      .reply(401, { error: 'invalid_client', error_description: 'AADSTS7000215: Invalid client secret provided.' });
    const result = await sourceOf({}, { credential: undefined }).source.check();
    expect(result.ok).toBe(false);
    expect(result.checks).toEqual([{ name: 'sign in', ok: false, detail: expect.stringMatching(/AADSTS7000215.*Check tenantId, clientId/) }]);
  });
});

describe('Entra config', () => {
  it('has defaults and wants exactly one kind of credential', () => {
    const config = configOf();
    expect(config).toMatchObject({
      graphBaseUrl: GRAPH,
      authorityHost: LOGIN,
      nestedGroups: false,
      emailAttribute: 'userPrincipalName',
      fullReadInterval: 24 * HOUR,
    });
    expect(() => configOf({ clientSecret: undefined })).toThrow(/give clientSecret, or certificate and privateKey/);
    expect(() => configOf({ certificate: 'PEM', privateKey: 'PEM' })).toThrow(/not both/);
  });
});

describe('Entra sign-in at an authority Microsoft does not know', () => {
  const REHEARSAL = 'https://login.rehearsal.test';
  const tokenReply = { token_type: 'Bearer', expires_in: 3600, ext_expires_in: 3600, access_token: 'at-5b0c2e9a7d41f3' };
  const openIdConfiguration = {
    issuer: `${REHEARSAL}/tid/v2.0`,
    authorization_endpoint: `${REHEARSAL}/tid/oauth2/v2.0/authorize`,
    token_endpoint: `${REHEARSAL}/tid/oauth2/v2.0/token`,
    jwks_uri: `${REHEARSAL}/tid/discovery/v2.0/keys`,
  };

  it('signs in there with disableInstanceDiscovery, without asking Microsoft', async () => {
    const discovery = nock(LOGIN).get(/.*/).reply(400, { error: 'invalid_instance' });
    const authority = nock(REHEARSAL)
      .get('/tid/v2.0/.well-known/openid-configuration')
      .reply(200, openIdConfiguration)
      .post('/tid/oauth2/v2.0/token', (body: Record<string, string>) => body.client_secret === SECRET && body.scope === `${GRAPH}/.default`)
      .query(true)
      .reply(200, tokenReply);
    const api = nock(GRAPH).matchHeader('authorization', 'Bearer at-5b0c2e9a7d41f3');
    mockLatestLinks(api);
    mockAssignments(api, [assignment('g1', 'Group', 'Sales')]);
    mockMembers(api, 'g1', [user('u1')]);

    const read = await sourceOf({ authorityHost: REHEARSAL, disableInstanceDiscovery: true }, { credential: undefined }).source.read();

    expect(authority.isDone() && api.isDone()).toBe(true);
    expect(discovery.isDone()).toBe(false);
    expect(read.users.map((u) => u.id)).toEqual(['u1']);
  });

  it('fails at once, as a configuration error, when instance discovery does not know the authority', async () => {
    let asked = 0;
    nock(LOGIN)
      .get('/common/discovery/instance')
      .query(true)
      .times(10)
      .reply(() => {
        asked++;
        return [400, { error: 'invalid_instance', error_description: 'AADSTS50049: Unknown or invalid instance.' }];
      });
    const authority = nock(REHEARSAL).get(/.*/).reply(200, openIdConfiguration).post(/.*/).reply(200, tokenReply);

    const err = await sourceOf({ authorityHost: REHEARSAL }, { credential: undefined })
      .source.read()
      .catch((e: unknown) => e);

    expect(err).toBeInstanceOf(SourceReadError);
    expect((err as Error).message).toMatch(
      /Microsoft's instance discovery does not know the authority https:\/\/login\.rehearsal\.test: set disableInstanceDiscovery: true .* or fix authorityHost/,
    );
    expect((err as SourceReadError).cause).toMatchObject({ failureClass: 'invalid' });
    // Not retried: one sign-in attempt asked Microsoft once, and the authority itself was never used.
    expect(asked).toBe(1);
    expect(authority.isDone()).toBe(false);
  });
});

describe('Entra transport: secrets, redirects and bounded waits', () => {
  const ACCESS_TOKEN = 'eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL2dyYXBoIn0.c2lnbmVkLWJ5LXRoZS1mYWtl';
  const tokenReply = { token_type: 'Bearer', expires_in: 3600, ext_expires_in: 3600, access_token: ACCESS_TOKEN };
  const login = () => nock(LOGIN).post('/tid/oauth2/v2.0/token').query(true);

  it('registers the Graph access token it obtains, so Graph echoing the Authorization header leaks nothing', async () => {
    const { lines, log } = capturedLogger();
    login().reply(200, tokenReply);
    const echo = `Authorization: Bearer ${ACCESS_TOKEN}; token=${echoedForms(ACCESS_TOKEN).join(' ')}; secret=${echoedForms(SECRET).join(' ')}`;
    nock(GRAPH)
      .matchHeader('authorization', `Bearer ${ACCESS_TOKEN}`)
      .get('/v1.0/users/delta')
      .query(true)
      .reply(503, { error: { code: 'ServiceUnavailable', message: echo } }, { 'Retry-After': '0' })
      .get('/v1.0/users/delta')
      .query(true)
      .reply(401, { error: { code: 'InvalidAuthenticationToken', message: `Access token validation failure. ${echo}` } });

    const err = await sourceOf({}, { credential: undefined, log })
      .source.read()
      .catch((e: unknown) => e);

    expect(err).toBeInstanceOf(SourceReadError);
    expect((err as Error).message).toMatch(
      /Graph refused the token \(HTTP 401 InvalidAuthenticationToken: Access token validation failure\. Authorization: Bearer \[REDACTED\]/,
    );
    expect(lines.some((l) => l.includes('retrying') && l.includes('[REDACTED]'))).toBe(true);
    expectNoLeak(ACCESS_TOKEN, err, (err as SourceReadError).cause, lines.join('\n'));
    expectNoLeak(SECRET, err, (err as SourceReadError).cause, lines.join('\n'));
  });

  it('sends the Graph token to no other host: a redirect fails the read', async () => {
    const collector = nock('https://collector.example').get(/.*/).reply(200, page([]));
    graph().get('/v1.0/users/delta').query(true).reply(302, '', { location: 'https://collector.example/v1.0/users/delta' });
    const err = await sourceOf()
      .source.read()
      .catch((e: unknown) => e);

    expect(collector.isDone()).toBe(false);
    expect(err).toBeInstanceOf(SourceReadError);
    expect((err as Error).message).toMatch(
      /Graph answered GET \/v1\.0\/users\/delta with a redirect \(HTTP 302\) to https:\/\/collector\.example; tvsync sends credentials only to the configured host/,
    );
    expect((err as SourceReadError).cause).toMatchObject({ failureClass: 'invalid' });
  });

  it('sends the client secret to no other host: a redirect of the token request fails the sign-in', async () => {
    const collector = nock('https://collector.example').post(/.*/).query(true).reply(200, tokenReply);
    login().reply(307, '', { location: 'https://collector.example/tid/oauth2/v2.0/token' });
    const err = await sourceOf({}, { credential: undefined })
      .source.read()
      .catch((e: unknown) => e);

    expect(collector.isDone()).toBe(false);
    expect(err).toBeInstanceOf(SourceReadError);
    expect((err as Error).message).toMatch(
      /The Entra sign-in endpoint answered POST \/tid\/oauth2\/v2\.0\/token with a redirect \(HTTP 307\) to https:\/\/collector\.example/,
    );
    expect((err as SourceReadError).cause).toMatchObject({ failureClass: 'invalid' });
  });

  it('fails at once, naming the wait, when the token endpoint or Graph asks to wait for days', async () => {
    let tokenRequests = 0;
    login()
      .times(5)
      .reply(() => {
        tokenRequests++;
        return [429, { error: 'temporarily_unavailable' }, { 'Retry-After': '999999' }];
      });
    const signIn = await sourceOf({}, { credential: undefined })
      .source.read()
      .catch((e: unknown) => e);
    expect(signIn).toBeInstanceOf(SourceReadError);
    expect((signIn as Error).message).toMatch(/throttled \(HTTP 429\): The Entra sign-in endpoint asks to wait 11\.6 days/);
    expect(tokenRequests).toBe(1);

    graph()
      .get('/v1.0/users/delta')
      .query(true)
      .reply(429, { error: { code: 'TooManyRequests', message: 'slow down' } }, { 'Retry-After': '999999' });
    const api = await sourceOf()
      .source.read()
      .catch((e: unknown) => e);
    expect((api as Error).message).toMatch(/Graph is throttling \(HTTP 429 TooManyRequests: slow down\): Graph asks to wait 11\.6 days/);
    expect((api as SourceReadError).cause).toMatchObject({ failureClass: 'rate-limited', retryAfterMs: 999_999_000 });
  }, 10_000);

  it('gives each sign-in request a deadline, and refuses a Graph answer larger than it reads', async () => {
    login().times(3).delay(5000).reply(200, tokenReply);
    const slow = await sourceOf({ timeout: 1000 }, { credential: undefined })
      .source.read()
      .catch((e: unknown) => e);
    expect(slow).toBeInstanceOf(SourceReadError);
    expect((slow as Error).message).toMatch(
      /signing in to Entra tenant tid as app cid failed: the sign-in endpoint did not answer within 1 second \(timeout\)/,
    );
    expect((slow as SourceReadError).cause).toMatchObject({ failureClass: 'transient' });

    graph()
      .get('/v1.0/users/delta')
      .query(true)
      .reply(200, Buffer.alloc(33 * 1024 * 1024, 0x20), { 'content-type': 'application/json' });
    await expect(sourceOf().source.read()).rejects.toThrow(/Graph answered GET \/v1\.0\/users\/delta with more than 32 MiB; not read/);
  }, 20_000);

  it('ends a Graph request whose body trickles past the timeout', async () => {
    const server = await tricklingServer('{"value":[');
    // Real sockets: nock's stand-ins do not behave like a slow server.
    nock.restore();
    try {
      const err = await sourceOf({ graphBaseUrl: server.origin, timeout: 1000 })
        .source.read()
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SourceReadError);
      expect((err as Error).message).toMatch(/Graph did not answer within 1 second \(timeout\)/);
      expect(server.requests).toHaveLength(3);
    } finally {
      nock.activate();
      server.close();
    }
  }, 20_000);
});
