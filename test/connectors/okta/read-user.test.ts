import nock from 'nock';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { oktaSourceConfigSchema } from '../../../src/connectors/okta/config.js';
import { createOktaSource } from '../../../src/connectors/okta/source.js';
import { SourceReadError } from '../../../src/connectors/source.js';
import type { BackoffPolicy } from '../../../src/net/retry.js';
import { MemoryStateStore } from '../../../src/store/memory-state.js';
import { expectNoLeak } from '../../support/leaks.js';
import { appGroup, appUser, oktaGroup, oktaUser, paged, rateHeaders, type OktaFake, type OktaStatus, type PageAnswer } from '../../support/okta-fake.js';

/** readUser: one person read now, with the scope rule the full read applies and the same mapping. */

const fake: OktaFake = { org: 'https://tvsync-readuser.okta.com', token: '00aReadUserToken_Hk3pZ9wQ5n', appId: '0oa1tvsyncuser001' };
const FAST: BackoffPolicy = { attempts: 3, baseMs: 1, capMs: 5, maxWaitMs: 2000 };
const log = pino({ level: 'silent' });
const APP_USERS = `/api/v1/apps/${fake.appId}/users`;

const support = oktaGroup(fake, '00g1support', 'Support');
const sales = oktaGroup(fake, '00g2sales', 'Sales');
const unassigned = oktaGroup(fake, '00g3other', 'Everyone else');
const user = (id: string, name: string, status: OktaStatus = 'ACTIVE') => oktaUser(fake, id, name, status);

function sourceFor(overrides: Record<string, unknown> = {}) {
  const config = oktaSourceConfigSchema.parse({
    type: 'okta',
    orgUrl: fake.org,
    auth: { method: 'apiToken', apiToken: fake.token },
    scope: { mode: 'app', appId: fake.appId },
    pageSize: 2,
    ...overrides,
  });
  return createOktaSource(config, { state: new MemoryStateStore(), log, backoff: FAST });
}

const api = () => nock(fake.org).matchHeader('authorization', `SSWS ${fake.token}`);
const json = { 'content-type': 'application/json', ...rateHeaders() };

function mockUser(ref: string, body: nock.Body, status = 200) {
  return api()
    .get(`/api/v1/users/${encodeURIComponent(ref)}`)
    .reply(status, body, json);
}
function mockAssignment(record: ReturnType<typeof oktaUser>, scope: 'USER' | 'GROUP' | 404, groupName?: string) {
  const request = api().get(`${APP_USERS}/${record.id}`);
  if (scope === 404)
    return request.reply(404, { errorCode: 'E0000007', errorSummary: `Not found: Resource not found: ${record.id} (AppUser)`, errorCauses: [] }, json);
  const assignment = appUser(fake, record, scope) as Record<string, unknown> & { _links: Record<string, unknown> };
  delete assignment._embedded;
  if (groupName) assignment._links = { ...assignment._links, group: { name: groupName, href: `${fake.org}/api/v1/groups/00g1support` } };
  return request.reply(200, assignment, json);
}
function mockAppGroups() {
  return paged(fake, `/api/v1/apps/${fake.appId}/groups`, { limit: '20', expand: 'group' }, [[appGroup(fake, support), appGroup(fake, sales)]]);
}
function mockUserGroups(id: string, pages: PageAnswer[]) {
  return paged(fake, `/api/v1/users/${id}/groups`, {}, pages);
}

/** What a full read of the app gives for this user: readUser must map it the same way. */
async function fullReadOf(record: ReturnType<typeof oktaUser>) {
  paged(fake, APP_USERS, { limit: '2', expand: 'user' }, [[appUser(fake, record)]]);
  paged(fake, `/api/v1/apps/${fake.appId}/groups`, { limit: '20', expand: 'group' }, [[]]);
  const read = await sourceFor().read();
  return read.users[0];
}

async function readError(promise: Promise<unknown> | undefined): Promise<SourceReadError> {
  const err = await (promise ?? Promise.resolve()).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SourceReadError);
  return err as SourceReadError;
}

beforeEach(() => {
  nock.disableNetConnect();
});
afterEach(() => {
  nock.cleanAll();
  nock.enableNetConnect();
});

describe('okta readUser, app scope', () => {
  it('assigned directly: in scope, mapped as the full read maps it, with the assigned groups the user is in', async () => {
    const alice = user('00u1alice', 'Alice Archer');
    const asRead = await fullReadOf(alice);
    mockUser(alice.id, alice);
    mockAssignment(alice, 'USER');
    mockAppGroups();
    // Pages of the user's groups: two assigned to the app, one not.
    mockUserGroups(alice.id, [[support, unassigned], [sales]]);
    expect(await sourceFor().readUser?.(alice.id)).toEqual({
      status: 'in-scope',
      user: asRead,
      groups: [
        { id: support.id, name: 'Support' },
        { id: sales.id, name: 'Sales' },
      ],
      groupsComplete: true,
      why: `assigned to app ${fake.appId} directly`,
    });
    expect(nock.pendingMocks()).toEqual([]);
  });

  it('assigned through a group, found by login', async () => {
    const bob = user('00u2bob', 'Bob Baker');
    mockUser('bob.baker@example.com', bob);
    mockAssignment(bob, 'GROUP', 'Support');
    mockAppGroups();
    mockUserGroups(bob.id, [[support]]);
    expect(await sourceFor().readUser?.('bob.baker@example.com')).toMatchObject({
      status: 'in-scope',
      user: { id: bob.id, email: 'bob.baker@example.com', active: true },
      groups: [{ id: support.id, name: 'Support' }],
      why: `assigned to app ${fake.appId} through group Support`,
    });
  });

  it('found by an e-mail that is not the login: one exact match only', async () => {
    const carol = { ...user('00u3carol', 'Carol Clark'), profile: { ...user('00u3carol', 'Carol Clark').profile, login: 'cclark' } };
    const search = (found: unknown[]) => paged(fake, '/api/v1/users', { search: 'profile.email eq "Carol.Clark@example.com"', limit: '2' }, [found]);
    mockUser('Carol.Clark@example.com', { errorCode: 'E0000007', errorSummary: 'Not found' }, 404);
    search([carol]);
    mockAssignment(carol, 'USER');
    mockAppGroups();
    mockUserGroups(carol.id, [[]]);
    expect(await sourceFor().readUser?.('Carol.Clark@example.com')).toMatchObject({ status: 'in-scope', user: { id: carol.id }, groups: [] });

    mockUser('Carol.Clark@example.com', { errorCode: 'E0000007', errorSummary: 'Not found' }, 404);
    search([carol, { ...carol, id: '00u9twin' }]);
    expect((await readError(sourceFor().readUser?.('Carol.Clark@example.com'))).message).toBe(
      '2 Okta users have the e-mail Carol.Clark@example.com; give the Okta user id instead',
    );

    mockUser('Carol.Clark@example.com', { errorCode: 'E0000007', errorSummary: 'Not found' }, 404);
    search([]);
    expect(await sourceFor().readUser?.('Carol.Clark@example.com')).toEqual({
      status: 'not-found',
      why: 'Okta has no user with the id, login or e-mail Carol.Clark@example.com',
    });
    expect(nock.pendingMocks()).toEqual([]);
  });

  it('not assigned: out of scope, with the user as Okta holds it; a missing app is a failure, not an unassignment', async () => {
    const dave = user('00u4dave', 'Dave Dunn', 'DEPROVISIONED');
    mockUser(dave.id, dave);
    mockAssignment(dave, 404);
    api().get(`/api/v1/apps/${fake.appId}`).reply(200, { id: fake.appId, name: 'teamviewer', label: 'TeamViewer', status: 'ACTIVE' }, json);
    expect(await sourceFor().readUser?.(dave.id)).toEqual({
      status: 'out-of-scope',
      user: expect.objectContaining({ id: dave.id, active: false }),
      why: `not assigned to the TeamViewer app ${fake.appId}; status DEPROVISIONED: disabled`,
    });

    mockUser(dave.id, dave);
    mockAssignment(dave, 404);
    api()
      .get(`/api/v1/apps/${fake.appId}`)
      .reply(404, { errorCode: 'E0000007', errorSummary: `Not found: Resource not found: ${fake.appId} (AppInstance)` }, json);
    expect((await readError(sourceFor().readUser?.(dave.id))).message).toMatch(/answered 404 .*check orgUrl and the app id/);
    expect(nock.pendingMocks()).toEqual([]);
  });

  it('suspended and still assigned: in scope and inactive, as the full read has it', async () => {
    const erin = user('00u5erin', 'Erin Evans', 'SUSPENDED');
    const asRead = await fullReadOf(erin);
    expect(asRead?.active).toBe(false);
    mockUser(erin.id, erin);
    mockAssignment(erin, 'USER');
    mockAppGroups();
    mockUserGroups(erin.id, [[]]);
    expect(await sourceFor().readUser?.(erin.id)).toMatchObject({
      status: 'in-scope',
      user: asRead,
      why: `assigned to app ${fake.appId} directly; status SUSPENDED: disabled`,
    });
  });

  it('deleted (404): not found; an id is not searched as an e-mail', async () => {
    mockUser('00u6gone', { errorCode: 'E0000007', errorSummary: 'Not found: Resource not found: 00u6gone (User)', errorCauses: [] }, 404);
    expect(await sourceFor().readUser?.('00u6gone')).toEqual({ status: 'not-found', why: 'Okta has no user with the id, login or e-mail 00u6gone' });
    expect(nock.pendingMocks()).toEqual([]);
  });

  it('throws when Okta cannot answer for sure: 5xx after retries, a 200 error body, an unreadable assignment, a failed group page', async () => {
    const frank = user('00u7frank', 'Frank Fox');
    api().get(`/api/v1/users/${frank.id}`).times(3).reply(503, { errorCode: 'E0000010', errorSummary: 'Service unavailable' });
    expect((await readError(sourceFor().readUser?.(frank.id))).message).toMatch(
      /^Okta read of user 00u7frank failed: Okta GET \/api\/v1\/users\/00u7frank answered 503/,
    );

    mockUser(frank.id, { errorCode: 'E0000009', errorSummary: 'Internal Server Error' });
    expect((await readError(sourceFor().readUser?.(frank.id))).message).toMatch(/cannot read \(id: /);

    mockUser(frank.id, frank);
    api().get(`${APP_USERS}/${frank.id}`).reply(200, '{"id":"00u7fr', json);
    await readError(sourceFor().readUser?.(frank.id));

    mockUser(frank.id, frank);
    mockAssignment(frank, 'USER');
    mockAppGroups();
    const [, broken] = mockUserGroups(frank.id, [[support], (request) => request.times(3).reply(500, { errorCode: 'E0000009' })]);
    await readError(sourceFor().readUser?.(frank.id));
    expect(broken?.isDone()).toBe(true);
  });

  it('keeps an echoed credential out of the error', async () => {
    api()
      .get('/api/v1/users/00u8gina')
      .times(3)
      .reply(500, { errorCode: 'E0000009', errorSummary: `Internal error; request had Authorization: SSWS ${fake.token}` });
    const err = await readError(sourceFor().readUser?.('00u8gina'));
    expectNoLeak(fake.token, err);
  });
});

describe('okta readUser, groups scope', () => {
  const groupsScope = { scope: { mode: 'groups', groupIds: [support.id, sales.id] } };

  it('a member of a configured group is in scope with those groups; anyone else is out of scope', async () => {
    const hana = user('00u9hana', 'Hana Hill');
    mockUser(hana.id, hana);
    mockUserGroups(hana.id, [[unassigned, sales]]);
    expect(await sourceFor(groupsScope).readUser?.(hana.id)).toEqual({
      status: 'in-scope',
      user: expect.objectContaining({ id: hana.id, active: true }),
      groups: [{ id: sales.id, name: 'Sales' }],
      groupsComplete: true,
      why: 'member of group Sales',
    });

    const ivan = user('00u10ivan', 'Ivan Ives', 'SUSPENDED');
    mockUser(ivan.id, ivan);
    mockUserGroups(ivan.id, [[unassigned]]);
    expect(await sourceFor(groupsScope).readUser?.(ivan.id)).toEqual({
      status: 'out-of-scope',
      user: expect.objectContaining({ id: ivan.id, active: false }),
      why: 'not a member of any configured group; status SUSPENDED: disabled',
    });
    expect(nock.pendingMocks()).toEqual([]);
  });
});
