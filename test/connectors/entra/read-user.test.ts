import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SourceReadError } from '../../../src/connectors/source.js';
import { expectNoLeak } from '../../support/leaks.js';
import { SECRET, assignment, graph, page, sourceOf, user } from './support.js';

beforeAll(() => nock.disableNetConnect());
afterEach(() => {
  nock.cleanAll();
});
afterAll(() => nock.enableNetConnect());

const USER_SELECT = 'id,userPrincipalName,mail,displayName,givenName,surname,accountEnabled,preferredLanguage';
const ID = '6e7b768e-07e2-4810-8459-485f84f8f204';
const ASSIGNED = { scope: { mode: 'assignment', servicePrincipalId: 'sp1' } };
const group = (id: string, displayName: string | null) => ({ '@odata.type': '#microsoft.graph.group', id, displayName });

function mockUser(scope: nock.Scope, ref: string, body: nock.Body, status = 200): void {
  scope
    .get(`/v1.0/users/${encodeURIComponent(ref)}`)
    .query({ $select: USER_SELECT })
    .reply(status, body);
}

function mockUserAssignments(scope: nock.Scope, id: string, rows: unknown[]): void {
  scope
    .get(`/v1.0/users/${id}/appRoleAssignments`)
    .matchHeader('consistencylevel', 'eventual')
    .query({ $select: 'principalId,principalType,principalDisplayName,resourceId', $filter: 'resourceId eq sp1', $count: 'true' })
    .reply(200, page(rows));
}

describe('Entra readUser in assignment mode', () => {
  it('is in scope when assigned directly or through a group, with those groups named as the full read names them', async () => {
    const scope = graph();
    mockUser(scope, ID, user(ID));
    mockUserAssignments(scope, ID, [assignment(ID, 'User', `User ${ID}`), assignment('g1', 'Group', 'Sales'), assignment('g2', 'Group', null)]);
    scope.get('/v1.0/groups/g2').query({ $select: 'id,displayName' }).reply(200, { id: 'g2', displayName: 'Ops' });
    const found = await sourceOf(ASSIGNED).source.readUser?.(ID);
    expect(found).toEqual({
      status: 'in-scope',
      user: {
        id: ID,
        email: `${ID}@contoso.test`,
        displayName: `User ${ID}`,
        givenName: 'Given',
        familyName: `Sur-${ID}`,
        active: true,
        preferredLanguage: 'en-US',
      },
      groups: [
        { id: 'g1', name: 'Sales' },
        { id: 'g2', name: 'Ops' },
      ],
      groupsComplete: true,
      why: 'assigned to app sp1 directly and through groups "Sales", "Ops"',
    });
    expect(scope.isDone()).toBe(true);
  });

  it('is out of scope when assigned to nothing, and says a disabled account is disabled', async () => {
    const scope = graph();
    mockUser(scope, 'u1', user('u1'));
    mockUserAssignments(scope, 'u1', [assignment('gX', 'Group', 'Other app', 'sp2')]);
    expect(await sourceOf(ASSIGNED).source.readUser?.('u1')).toMatchObject({
      status: 'out-of-scope',
      user: { id: 'u1' },
      why: 'not assigned to the TeamViewer app sp1, directly or through a group',
    });

    mockUser(scope, 'u2', user('u2', { accountEnabled: false }));
    mockUserAssignments(scope, 'u2', [assignment('g1', 'Group', 'Sales')]);
    expect(await sourceOf(ASSIGNED).source.readUser?.('u2')).toMatchObject({
      status: 'in-scope',
      user: { id: 'u2', active: false },
      groups: [{ id: 'g1', name: 'Sales' }],
      why: 'assigned to app sp1 through group "Sales"; the account is disabled (accountEnabled false)',
    });
    expect(scope.isDone()).toBe(true);
  });

  it('with nestedGroups, matches the groups assigned to the app against every group the user is in', async () => {
    const scope = graph();
    mockUser(scope, 'u1', user('u1'));
    scope
      .get('/v1.0/servicePrincipals/sp1/appRoleAssignedTo')
      .query(true)
      .reply(200, page([assignment('g1', 'Group', 'Sales'), assignment('g3', 'Group', null), assignment('u9', 'User', 'Nine')]));
    scope
      .get('/v1.0/users/u1/transitiveMemberOf')
      .query({ $select: 'id,displayName', $top: '999' })
      .reply(200, page([group('g3', 'Nested Ops'), group('g7', 'Unassigned'), { '@odata.type': '#microsoft.graph.directoryRole', id: 'r1' }]));
    expect(await sourceOf({ ...ASSIGNED, nestedGroups: true }).source.readUser?.('u1')).toMatchObject({
      status: 'in-scope',
      groups: [{ id: 'g3', name: 'Nested Ops' }],
      why: 'assigned to app sp1 through group "Nested Ops"',
    });
    expect(scope.isDone()).toBe(true);
  });
});

describe('Entra readUser in groups mode', () => {
  it('is in scope as a member of a configured group; otherwise out of scope', async () => {
    const scope = graph();
    mockUser(scope, 'u1', user('u1'));
    scope
      .get('/v1.0/users/u1/memberOf')
      .query({ $select: 'id,displayName', $top: '999' })
      .reply(200, page([group('g9', 'Elsewhere'), group('g1', 'Sales')]));
    expect(await sourceOf().source.readUser?.('u1')).toMatchObject({
      status: 'in-scope',
      groups: [{ id: 'g1', name: 'Sales' }],
      why: 'member of group "Sales"',
    });

    mockUser(scope, 'u2', user('u2'));
    scope
      .get('/v1.0/users/u2/memberOf')
      .query(true)
      .reply(200, page([group('g9', 'Elsewhere')]));
    expect(await sourceOf().source.readUser?.('u2')).toMatchObject({ status: 'out-of-scope', why: 'not a member of any group in scope.groupIds' });
    expect(scope.isDone()).toBe(true);
  });
});

describe('Entra readUser: finding the person', () => {
  it('finds by user principal name, then by mail with exactly one match', async () => {
    const scope = graph();
    mockUser(scope, 'ann@contoso.test', user('u1', { userPrincipalName: 'ann@contoso.test' }));
    scope
      .get('/v1.0/users/u1/memberOf')
      .query(true)
      .reply(200, page([group('g1', 'Sales')]));
    expect(await sourceOf().source.readUser?.('ann@contoso.test')).toMatchObject({ status: 'in-scope', user: { id: 'u1' } });

    mockUser(scope, 'ann.smith@contoso.test', { error: { code: 'Request_ResourceNotFound', message: 'not found' } }, 404);
    scope
      .get('/v1.0/users')
      .query({ $select: USER_SELECT, $filter: "mail eq 'ann.smith@contoso.test'" })
      .reply(200, page([user('u1', { mail: 'ann.smith@contoso.test' })]));
    scope.get('/v1.0/users/u1/memberOf').query(true).reply(200, page([]));
    expect(await sourceOf({ emailAttribute: 'mail' }).source.readUser?.('ann.smith@contoso.test')).toMatchObject({
      status: 'out-of-scope',
      user: { id: 'u1', email: 'ann.smith@contoso.test' },
    });

    mockUser(scope, "o'neil@contoso.test", { error: { code: 'Request_ResourceNotFound', message: 'not found' } }, 404);
    scope
      .get('/v1.0/users')
      .query({ $select: USER_SELECT, $filter: "mail eq 'o''neil@contoso.test'" })
      .reply(200, page([user('u1'), user('u2')]));
    await expect(sourceOf().source.readUser?.("o'neil@contoso.test")).rejects.toThrow(/2 Entra users have the mail/);

    mockUser(scope, 'nobody@contoso.test', { error: { code: 'Request_ResourceNotFound', message: 'not found' } }, 404);
    scope.get('/v1.0/users').query(true).reply(200, page([]));
    expect(await sourceOf().source.readUser?.('nobody@contoso.test')).toMatchObject({ status: 'not-found' });
    expect(scope.isDone()).toBe(true);
  });

  it('says not-found for a deleted user (404)', async () => {
    const scope = graph();
    mockUser(scope, ID, { error: { code: 'Request_ResourceNotFound', message: `Resource '${ID}' does not exist.` } }, 404);
    expect(await sourceOf().source.readUser?.(ID)).toEqual({ status: 'not-found', why: `Entra has no user ${ID}` });
    expect(scope.isDone()).toBe(true);
  });

  it('throws SourceReadError when unsure: 5xx after retries, an error in a 200, a malformed record or membership, a failed membership read', async () => {
    const scope = graph();
    mockUser(scope, 'u1', { error: { code: 'UnknownError', message: `upstream echoed client_secret=${SECRET} and Bearer test-token` } }, 500);
    mockUser(scope, 'u1', { error: { code: 'UnknownError', message: `upstream echoed client_secret=${SECRET}` } }, 502);
    mockUser(scope, 'u1', { error: { code: 'UnknownError', message: `upstream echoed client_secret=${SECRET}` } }, 503);
    const failed = await sourceOf()
      .source.readUser?.('u1')
      .catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(SourceReadError);
    expect((failed as Error).message).toMatch(/reading user u1 failed: reading user u1: Graph failed \(HTTP 503/);
    expectNoLeak(SECRET, failed);
    expect((failed as Error).message).not.toContain('test-token');

    mockUser(scope, 'u1', { error: { code: 'InternalServerError', message: 'oops' } });
    await expect(sourceOf().source.readUser?.('u1')).rejects.toThrow(/user record tvsync cannot read/);

    mockUser(scope, 'u1', user('u1', { accountEnabled: 'no' }));
    await expect(sourceOf().source.readUser?.('u1')).rejects.toBeInstanceOf(SourceReadError);

    mockUser(scope, 'u1', user('u1'));
    scope
      .get('/v1.0/users/u1/memberOf')
      .query(true)
      .reply(200, page([{ displayName: 'no id' }]));
    await expect(sourceOf().source.readUser?.('u1')).rejects.toThrow(/membership tvsync cannot read/);

    mockUser(scope, 'u1', user('u1'));
    scope.get('/v1.0/users/u1/memberOf').query(true).times(3).reply(503, {});
    await expect(sourceOf().source.readUser?.('u1')).rejects.toBeInstanceOf(SourceReadError);

    mockUser(scope, 'u1', user('u1'));
    scope.get('/v1.0/users/u1/appRoleAssignments').query(true).reply(500, 'upstream', { 'content-type': 'text/plain' });
    scope.get('/v1.0/users/u1/appRoleAssignments').query(true).times(2).reply(503, {});
    await expect(sourceOf(ASSIGNED).source.readUser?.('u1')).rejects.toThrow(/reading the user's app assignments: Graph failed/);
    expect(scope.isDone()).toBe(true);
  });

  it("without Directory.Read.All, matches the app's assignment listing against the user's direct groups", async () => {
    const scope = graph();
    mockUser(scope, 'u1', user('u1'));
    scope
      .get('/v1.0/users/u1/appRoleAssignments')
      .query(true)
      .reply(403, { error: { code: 'Authorization_RequestDenied', message: 'Insufficient privileges to complete the operation.' } });
    scope
      .get('/v1.0/servicePrincipals/sp1/appRoleAssignedTo')
      .query(true)
      .reply(200, page([assignment('g1', 'Group', 'Sales'), assignment('g2', 'Group', 'Ops')]));
    scope
      .get('/v1.0/users/u1/memberOf')
      .query({ $select: 'id,displayName', $top: '999' })
      .reply(200, page([group('g2', 'Ops'), group('g5', 'Other')]));
    expect(await sourceOf(ASSIGNED).source.readUser?.('u1')).toMatchObject({ status: 'in-scope', groups: [{ id: 'g2', name: 'Ops' }] });
    expect(scope.isDone()).toBe(true);
  });
});
