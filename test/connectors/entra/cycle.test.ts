import nock from 'nock';
import { describe, expect, it } from 'vitest';
import { DEFAULT_BACKOFF } from '../../../src/net/retry.js';
import { provisioned, runCycle, useConnectorCycle, userWrites } from '../../support/cycle.js';

/*
 * A whole cycle with Entra ID as the source: the daemon's own Entra connector (client-secret sign-in
 * included) talks to a nock'd Microsoft Graph, the runtime runs on real Redis, TeamViewer is the emulator.
 */

const GRAPH = 'https://graph.microsoft.com';
const LOGIN = 'https://login.microsoftonline.com';
const TENANT = 'tid-cycle';
const SECRET = 'cycle~Secret.Value_42';
const ACCESS_TOKEN = 'graph-access-token';
const USER_SELECT = 'id,userPrincipalName,mail,displayName,givenName,surname,accountEnabled,preferredLanguage';
const ASSIGNMENT_SELECT = 'principalId,principalType,principalDisplayName';
const SYNC = 'entra-corp';

/** A Graph user as /users/{id} and /groups/{id}/members send it. */
function graphUser(id: string, displayName: string, accountEnabled = true) {
  const [givenName, surname] = displayName.split(' ');
  return {
    id,
    userPrincipalName: `${givenName?.toLowerCase()}.${surname?.toLowerCase()}@contoso.test`,
    mail: null,
    displayName,
    givenName,
    surname,
    accountEnabled,
    preferredLanguage: null,
  };
}

function page(value: unknown[], links: { next?: string; delta?: string } = {}) {
  return {
    '@odata.context': `${GRAPH}/v1.0/$metadata#directoryObjects`,
    value,
    ...(links.next ? { '@odata.nextLink': links.next } : {}),
    ...(links.delta ? { '@odata.deltaLink': links.delta } : {}),
  };
}

const assignment = (principalId: string, principalType: 'User' | 'Group', principalDisplayName: string) => ({
  id: `as-${principalId}`,
  appRoleId: '00000000-0000-0000-0000-000000000000',
  principalId,
  principalType,
  principalDisplayName,
  resourceId: 'sp1',
});

const adele = graphUser('u1', 'Adele Vance');
const ben = graphUser('u2', 'Ben Walters', false);
const cara = graphUser('u3', 'Cara Holt');
const dan = graphUser('u4', 'Dan Ito');
const eve = graphUser('u5', 'Eve Lund');

const graph = () => nock(GRAPH).matchHeader('authorization', `Bearer ${ACCESS_TOKEN}`);

/** Client-credentials sign-in; the connector's credential caches the token, so one answer serves every cycle. */
function mockSignIn(): nock.Scope {
  return nock(LOGIN)
    .post(`/${TENANT}/oauth2/v2.0/token`, (body: Record<string, string>) => body.client_secret === SECRET && body.scope === `${GRAPH}/.default`)
    .query(true)
    .reply(200, { token_type: 'Bearer', expires_in: 3600, ext_expires_in: 3600, access_token: ACCESS_TOKEN });
}

function mockLatestLinks(scope: nock.Scope, n: number): void {
  scope
    .get('/v1.0/users/delta')
    .query({ $select: USER_SELECT, $deltaToken: 'latest' })
    .reply(200, page([], { delta: `${GRAPH}/v1.0/users/delta?$deltatoken=U${n}` }))
    .get('/v1.0/groups/delta')
    .query({ $select: 'displayName,members', $deltaToken: 'latest' })
    .reply(200, page([], { delta: `${GRAPH}/v1.0/groups/delta?$deltatoken=G${n}` }));
}

/** The app's assignments over two pages: Adele and Ben directly, the Sales group on page 1. */
function mockAssignments(scope: nock.Scope, opts: { secondPage?: 'ok' | 'failing' } = {}): void {
  const path = '/v1.0/servicePrincipals/sp1/appRoleAssignedTo';
  scope
    .get(path)
    .query({ $select: ASSIGNMENT_SELECT, $top: '999' })
    .reply(
      200,
      page([assignment('u1', 'User', 'Adele Vance'), assignment('g1', 'Group', 'Sales')], {
        next: `${GRAPH}${path}?$select=${ASSIGNMENT_SELECT}&$top=999&$skiptoken=A2`,
      }),
    );
  const second = scope.get(path).query({ $select: ASSIGNMENT_SELECT, $top: '999', $skiptoken: 'A2' });
  if (opts.secondPage === 'failing') {
    // Graph's answer under load: a 503 that says when to come back. It never recovers here.
    second
      .times(DEFAULT_BACKOFF.attempts)
      .reply(503, { error: { code: 'ServiceUnavailable', message: 'Service is temporarily unavailable' } }, { 'Retry-After': '0' });
  } else {
    second.reply(200, page([assignment('u2', 'User', 'Ben Walters')]));
  }
}

/** Sales' members over two pages. */
function mockSalesMembers(scope: nock.Scope, members: unknown[][]): void {
  const path = '/v1.0/groups/g1/members/microsoft.graph.user';
  members.forEach((value, i) => {
    const query = i === 0 ? { $select: USER_SELECT, $top: '999' } : { $select: USER_SELECT, $top: '999', $skiptoken: `M${i + 1}` };
    const next = i < members.length - 1 ? `${GRAPH}${path}?$select=${USER_SELECT}&$top=999&$skiptoken=M${i + 2}` : undefined;
    scope
      .get(path)
      .query(query)
      .reply(200, page(value, next ? { next } : {}));
  });
}

function mockDirectUsers(scope: nock.Scope): void {
  for (const user of [adele, ben]) {
    scope
      .get(`/v1.0/users/${user.id}`)
      .query({ $select: USER_SELECT })
      .reply(200, { '@odata.context': `${GRAPH}/v1.0/$metadata#users/$entity`, ...user });
  }
}

/** Everything a full read asks Graph for. */
function mockFullRead(n: number): nock.Scope {
  const scope = graph();
  mockLatestLinks(scope, n);
  mockAssignments(scope);
  mockSalesMembers(scope, [[cara, dan], [eve]]);
  mockDirectUsers(scope);
  return scope;
}

const setUpCycle = useConnectorCycle(SYNC);

function setUp(name: string, extraSource = '') {
  const source = `      type: entra
      tenantId: ${TENANT}
      clientId: cid-cycle
      clientSecret: \${ENTRA_SECRET}
      scope: { mode: assignment, servicePrincipalId: sp1 }
${extraSource}`;
  return setUpCycle(name, source, { ENTRA_SECRET: SECRET });
}

const EXPECTED_AFTER_FIRST = [
  { userName: 'adele.vance@contoso.test', displayName: 'Adele Vance', active: true },
  { userName: 'cara.holt@contoso.test', displayName: 'Cara Holt', active: true },
  { userName: 'dan.ito@contoso.test', displayName: 'Dan Ito', active: true },
  { userName: 'eve.lund@contoso.test', displayName: 'Eve Lund', active: true },
];

describe('a sync cycle with Entra ID as the source', () => {
  it('provisions the assigned users and group members, then deactivates a user the delta reports removed', async () => {
    const { tv, daemon } = await setUp('entra-cycle');
    const signIn = mockSignIn();
    const full = mockFullRead(1);

    const first = await runCycle(daemon, SYNC);
    expect(first.outcome, JSON.stringify(first.failure)).toBe('succeeded');
    expect(signIn.isDone() && full.isDone()).toBe(true);
    expect(first.operations.createUser).toEqual({ planned: 4, applied: 4, failed: 0, cancelled: 0 });
    // Ben is disabled in Entra and not in TeamViewer: he is not created.
    expect(first.skipped).toEqual([expect.objectContaining({ reason: 'inactive-not-in-teamviewer', email: 'ben.walters@contoso.test' })]);
    expect(provisioned(tv.emulator)).toEqual(EXPECTED_AFTER_FIRST);

    // Next cycle: an incremental read. Cara was deleted; Graph says so in both delta feeds.
    tv.emulator.resetStats();
    const delta = graph().matchHeader('prefer', 'odata.maxpagesize=999');
    delta
      .get('/v1.0/users/delta')
      .query({ $deltatoken: 'U1' })
      .reply(200, page([{ id: 'u3', '@removed': { reason: 'deleted' } }], { next: `${GRAPH}/v1.0/users/delta?$skiptoken=US2` }))
      .get('/v1.0/users/delta')
      .query({ $skiptoken: 'US2' })
      .reply(200, page([], { delta: `${GRAPH}/v1.0/users/delta?$deltatoken=U2` }))
      .get('/v1.0/groups/delta')
      .query({ $deltatoken: 'G1' })
      .reply(
        200,
        page([{ id: 'g1', displayName: 'Sales', 'members@delta': [{ '@odata.type': '#microsoft.graph.user', id: 'u3', '@removed': { reason: 'deleted' } }] }], {
          delta: `${GRAPH}/v1.0/groups/delta?$deltatoken=G2`,
        }),
      );
    const relist = graph();
    mockAssignments(relist);
    mockSalesMembers(relist, [[dan, eve]]);

    const second = await runCycle(daemon, SYNC);
    expect(second.outcome, JSON.stringify(second.failure)).toBe('succeeded');
    expect(delta.isDone() && relist.isDone()).toBe(true);
    expect(second.operations).toMatchObject({
      createUser: { planned: 0, applied: 0, failed: 0, cancelled: 0 },
      updateUser: { planned: 0, applied: 0, failed: 0, cancelled: 0 },
      reactivateUser: { planned: 0, applied: 0, failed: 0, cancelled: 0 },
      deactivateUser: { planned: 1, applied: 1, failed: 0, cancelled: 0 },
    });
    expect(second.summary?.unchanged).toBe(3);
    expect(userWrites(tv.emulator)).toEqual({ create: 0, patch: 1, put: 0 });
    expect(provisioned(tv.emulator)).toEqual(EXPECTED_AFTER_FIRST.map((u) => (u.userName === 'cara.holt@contoso.test' ? { ...u, active: false } : u)));
  });

  it('fails the cycle as source-read when a later page keeps failing, and deactivates nobody', async () => {
    // fullReadInterval 0: every read is a full one, so the failing page is a listing's second page.
    const { tv, daemon } = await setUp('entra-cycle-fail', '      fullReadInterval: 0');
    mockSignIn();
    mockFullRead(1);
    const first = await runCycle(daemon, SYNC);
    expect(first.outcome, JSON.stringify(first.failure)).toBe('succeeded');
    expect(provisioned(tv.emulator)).toEqual(EXPECTED_AFTER_FIRST);

    tv.emulator.resetStats();
    const broken = graph();
    mockLatestLinks(broken, 2);
    mockAssignments(broken, { secondPage: 'failing' });
    const later = graph();
    mockSalesMembers(later, [[dan, eve]]);

    const second = await runCycle(daemon, SYNC);
    expect(broken.isDone()).toBe(true);
    // The read stopped at the failing page: no group was listed after it.
    expect(later.isDone()).toBe(false);
    expect(second.outcome).toBe('failed');
    expect(second.failure).toMatchObject({ failureClass: 'source-read', message: expect.stringMatching(/nothing was deactivated.*HTTP 503/) });
    expect(Object.values(second.operations).every((c) => c.planned === 0)).toBe(true);
    expect(tv.emulator.stats.writes).toBe(0);
    expect(provisioned(tv.emulator)).toEqual(EXPECTED_AFTER_FIRST);
  });
});
