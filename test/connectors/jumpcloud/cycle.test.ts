import nock from 'nock';
import { describe, expect, it } from 'vitest';
import { SYSTEM_USER_FIELDS } from '../../../src/connectors/jumpcloud/wire.js';
import { DEFAULT_BACKOFF } from '../../../src/net/retry.js';
import { provisioned, runCycle, useConnectorCycle, userWrites, type ProvisionedUser } from '../../support/cycle.js';

/*
 * A whole cycle with JumpCloud as the source: the daemon's own JumpCloud connector talks to a nock'd
 * JumpCloud API (v1 and v2, pages of 100), the runtime runs on real Redis, TeamViewer is the emulator.
 */

const HOST = 'https://console.jumpcloud.com';
const KEY = 'jc-cycle-key-8d41f0a2c9e3';
const APP = '6a00000000000000000c0c01';
const SYNC = 'jumpcloud-corp';

const uid = (n: number) => `5f${n.toString(16).padStart(22, '0')}`;
const GROUP = { id: `64${'1'.padStart(22, '0')}`, type: 'user_group' };
const app = { id: APP, type: 'application' };

/** The directory holds 120 users; user 7 is suspended. */
const DIRECTORY_SIZE = 120;
const SUSPENDED = 7;
function systemUser(n: number) {
  return {
    _id: uid(n),
    username: `user${n}`,
    email: `user${n}@example.test`,
    firstname: `First${n}`,
    lastname: `Last${n}`,
    displayname: `First${n} Last${n}`,
    activated: true,
    account_locked: false,
    suspended: n === SUSPENDED,
    password_expired: false,
    state: n === SUSPENDED ? 'SUSPENDED' : 'ACTIVATED',
  };
}

type Node = { id: string; type: string };
const edge = (from: Node, to: Node) => ({ from: { ...from, attributes: null }, to: { ...to, attributes: null }, attributes: null });
/** A GraphObjectWithPaths: the chain of edges from the application to the object. */
const reached = (id: string, type: string, chain: Node[]) => ({
  id,
  type,
  compiledAttributes: {},
  paths: [chain.slice(1).map((to, i) => edge(chain[i] ?? app, to))],
});
const member = (id: string) => ({ to: { id, type: 'user', attributes: null }, attributes: null });

const jc = () => nock(HOST, { reqheaders: { 'x-api-key': KEY } });
const total = (n: number) => ({ 'x-total-count': String(n) });
const pageOf = (skip: number) => ({ limit: '100', skip: String(skip) });

/**
 * The application scope with direct user bindings: users 0-104 are members of the bound group
 * "TeamViewer Users", 105-109 are bound to the application directly. `unbound` users are no longer
 * bound at all.
 */
function scopeIds(unbound: number[] = []): number[] {
  return Array.from({ length: 110 }, (_, n) => n).filter((n) => !unbound.includes(n));
}

function mockBoundGroups(scope: nock.Scope): void {
  scope
    .get(`/api/v2/applications/${APP}/usergroups`)
    .query(pageOf(0))
    .reply(200, [reached(GROUP.id, 'user_group', [app, GROUP])], total(1));
}

function appUser(n: number) {
  const user = { id: uid(n), type: 'user' };
  return n < 105 ? reached(uid(n), 'user', [app, GROUP, user]) : reached(uid(n), 'user', [app, user]);
}

/** Everything a read of the application scope asks JumpCloud for. */
function mockRead(unbound: number[] = []): nock.Scope {
  const ids = scopeIds(unbound);
  const members = ids.filter((n) => n < 105);
  const scope = jc();
  mockBoundGroups(scope);
  for (const skip of [0, 100]) {
    scope
      .get(`/api/v2/applications/${APP}/users`)
      .query(pageOf(skip))
      .reply(200, ids.slice(skip, skip + 100).map(appUser), total(ids.length));
    scope
      .get(`/api/v2/usergroups/${GROUP.id}/members`)
      .query(pageOf(skip))
      .reply(
        200,
        members.slice(skip, skip + 100).map((n) => member(uid(n))),
        total(members.length),
      );
    scope
      .get('/api/systemusers')
      .query({ ...pageOf(skip), sort: '_id', fields: SYSTEM_USER_FIELDS })
      .reply(200, { totalCount: DIRECTORY_SIZE, results: Array.from({ length: Math.min(100, DIRECTORY_SIZE - skip) }, (_, i) => systemUser(skip + i)) });
  }
  scope
    .get('/api/v2/usergroups')
    .query({ ...pageOf(0), fields: 'id name' })
    .reply(
      200,
      [
        { id: GROUP.id, name: 'TeamViewer Users', type: 'user_group' },
        { id: `64${'2'.padStart(22, '0')}`, name: 'Contractors', type: 'user_group' },
      ],
      total(2),
    );
  return scope;
}

const setUpCycle = useConnectorCycle(SYNC);

function setUp(name: string) {
  const source = `      type: jumpcloud
      apiKey: \${JC_KEY}
      scope: { mode: application, applicationId: "${APP}", includeDirectUserBindings: true }`;
  return setUpCycle(name, source, { JC_KEY: KEY }, 16);
}

function expectedUsers(inactive: number[] = []): ProvisionedUser[] {
  return scopeIds()
    .filter((n) => n !== SUSPENDED)
    .map((n) => ({ userName: `user${n}@example.test`, displayName: `First${n} Last${n}`, active: !inactive.includes(n) }))
    .sort((a, b) => (a.userName < b.userName ? -1 : a.userName > b.userName ? 1 : 0));
}
const NONE = { planned: 0, applied: 0, failed: 0, cancelled: 0 };

describe('a sync cycle with JumpCloud as the source', () => {
  it('provisions the bound users, writes nothing when JumpCloud says the same, and deactivates an unbound user', async () => {
    const { tv, daemon } = await setUp('jumpcloud-cycle');

    const firstRead = mockRead();
    const first = await runCycle(daemon, SYNC);
    expect(first.outcome, JSON.stringify(first.failure)).toBe('succeeded');
    expect(firstRead.isDone()).toBe(true);
    expect(first.operations.createUser).toEqual({ planned: 109, applied: 109, failed: 0, cancelled: 0 });
    expect(first.skipped).toEqual([expect.objectContaining({ reason: 'inactive-not-in-teamviewer', email: `user${SUSPENDED}@example.test` })]);
    expect(provisioned(tv.emulator)).toEqual(expectedUsers());

    const writes = tv.emulator.stats.writes;
    const sameRead = mockRead();
    const second = await runCycle(daemon, SYNC);
    expect(second.outcome).toBe('succeeded');
    expect(sameRead.isDone()).toBe(true);
    expect(second.summary?.unchanged).toBe(109);
    expect(second.operations).toMatchObject({ createUser: NONE, updateUser: NONE, reactivateUser: NONE, deactivateUser: NONE });
    expect(tv.emulator.stats.writes).toBe(writes);

    // User 108 (bound directly) is unbound from the application.
    tv.emulator.resetStats();
    const unboundRead = mockRead([108]);
    const third = await runCycle(daemon, SYNC);
    expect(third.outcome).toBe('succeeded');
    expect(unboundRead.isDone()).toBe(true);
    expect(third.operations).toMatchObject({
      createUser: NONE,
      updateUser: NONE,
      reactivateUser: NONE,
      deactivateUser: { planned: 1, applied: 1, failed: 0, cancelled: 0 },
    });
    expect(userWrites(tv.emulator)).toEqual({ create: 0, patch: 1, put: 0 });
    expect(provisioned(tv.emulator)).toEqual(expectedUsers([108]));
  });

  it('fails the cycle as source-read when a later page keeps failing, and deactivates nobody', async () => {
    const { tv, daemon } = await setUp('jumpcloud-cycle-fail');
    mockRead();
    expect((await runCycle(daemon, SYNC)).outcome).toBe('succeeded');
    expect(provisioned(tv.emulator)).toEqual(expectedUsers());

    tv.emulator.resetStats();
    // Asked for alongside the users; whether it is answered before the failure does not matter.
    mockBoundGroups(jc());
    const firstPage = jc().get(`/api/v2/applications/${APP}/users`).query(pageOf(0)).reply(200, scopeIds().slice(0, 100).map(appUser), total(110));
    // JumpCloud overloaded: a 503 asking to retry at once, on every attempt.
    const failing = jc()
      .get(`/api/v2/applications/${APP}/users`)
      .query(pageOf(100))
      .times(DEFAULT_BACKOFF.attempts)
      .reply(503, { message: 'Service Unavailable' }, { 'Retry-After': '0' });

    const second = await runCycle(daemon, SYNC);
    expect(firstPage.isDone() && failing.isDone()).toBe(true);
    expect(second.outcome).toBe('failed');
    expect(second.failure).toMatchObject({
      failureClass: 'source-read',
      message: expect.stringMatching(/nothing was deactivated.*applications\/.*\/users was throttled \(HTTP 503\)/),
    });
    expect(Object.values(second.operations).every((c) => c.planned === 0)).toBe(true);
    expect(tv.emulator.stats.writes).toBe(0);
    expect(provisioned(tv.emulator)).toEqual(expectedUsers());
  });
});
