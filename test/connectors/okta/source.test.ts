import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nock from 'nock';
import { pino, type Logger } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { oktaSourceConfigSchema } from '../../../src/connectors/okta/config.js';
import { createOktaSource } from '../../../src/connectors/okta/source.js';
import { SyncError } from '../../../src/model/failure.js';
import type { BackoffPolicy } from '../../../src/net/retry.js';
import { SourceReadError } from '../../../src/connectors/source.js';
import { MemoryStateStore } from '../../../src/store/memory-state.js';
import { capturedLogger, echoedForms, expectNoLeak } from '../../support/leaks.js';
import { tricklingServer } from '../../support/slow-server.js';

const ORG = 'https://tvsync-test.okta.com';
const TOKEN = '00aTestApiToken_Zq9vX3kP7mW2';
const APP = '0oa1tvsyncapp0001';
const FAST: BackoffPolicy = { attempts: 3, baseMs: 1, capMs: 5, maxWaitMs: 2000 };
const log = pino({ level: 'silent' });
const UPDATED = '2026-10-01T10:00:00.000Z';

type Status = 'STAGED' | 'PROVISIONED' | 'ACTIVE' | 'RECOVERY' | 'LOCKED_OUT' | 'PASSWORD_EXPIRED' | 'SUSPENDED' | 'DEPROVISIONED';

/** A user as GET /api/v1/users returns it. */
function oktaUser(id: string, status: Status = 'ACTIVE', profile: Record<string, unknown> = {}) {
  return {
    id,
    status,
    created: '2026-01-05T09:00:00.000Z',
    activated: status === 'STAGED' ? null : '2026-01-05T09:00:01.000Z',
    statusChanged: '2026-01-05T09:00:01.000Z',
    lastLogin: null,
    lastUpdated: UPDATED,
    passwordChanged: null,
    type: { id: 'oty1defaulttype0001' },
    profile: {
      firstName: `First ${id}`,
      lastName: `Last ${id}`,
      mobilePhone: null,
      secondEmail: null,
      login: `${id}@login.example.com`,
      email: `${id}@example.com`,
      ...profile,
    },
    credentials: { provider: { type: 'OKTA', name: 'OKTA' } },
    _links: { self: { href: `${ORG}/api/v1/users/${id}` } },
  };
}

/** An app user as GET /api/v1/apps/{appId}/users?expand=user returns it. */
function appUser(user: ReturnType<typeof oktaUser>, scope: 'USER' | 'GROUP' = 'USER', embed = true) {
  return {
    id: user.id,
    externalId: null,
    created: '2026-02-01T08:00:00.000Z',
    lastUpdated: '2026-02-01T08:00:00.000Z',
    scope,
    status: 'PROVISIONED',
    statusChanged: '2026-02-01T08:00:00.000Z',
    passwordChanged: null,
    syncState: 'SYNCHRONIZED',
    credentials: { userName: user.profile.login },
    profile: { email: user.profile.email, given_name: user.profile.firstName, family_name: user.profile.lastName },
    _links: {
      app: { href: `${ORG}/api/v1/apps/${APP}` },
      user: { href: `${ORG}/api/v1/users/${user.id}` },
      ...(scope === 'GROUP' ? { group: { name: 'Support', href: `${ORG}/api/v1/groups/00g1support000001` } } : {}),
    },
    ...(embed ? { _embedded: { user } } : {}),
  };
}

function oktaGroup(id: string, name: string) {
  return {
    id,
    created: '2026-01-01T00:00:00.000Z',
    lastUpdated: '2026-01-01T00:00:00.000Z',
    lastMembershipUpdated: '2026-09-01T00:00:00.000Z',
    objectClass: ['okta:user_group'],
    type: 'OKTA_GROUP',
    profile: { name, description: null },
    _links: { self: { href: `${ORG}/api/v1/groups/${id}` }, users: { href: `${ORG}/api/v1/groups/${id}/users` } },
  };
}

/** A group assignment as GET /api/v1/apps/{appId}/groups?expand=group returns it. */
function appGroup(group: ReturnType<typeof oktaGroup>, embed = true) {
  return {
    id: group.id,
    lastUpdated: '2026-02-01T08:00:00.000Z',
    priority: 0,
    profile: {},
    _links: { app: { href: `${ORG}/api/v1/apps/${APP}` }, group: { href: `${ORG}/api/v1/groups/${group.id}` } },
    ...(embed ? { _embedded: { group } } : {}),
  };
}

function rateHeaders(remaining = 599, dateMs = Date.now()) {
  const seconds = Math.floor(dateMs / 1000);
  return {
    'x-rate-limit-limit': '600',
    'x-rate-limit-remaining': String(remaining),
    'x-rate-limit-reset': String(seconds + 60),
    date: new Date(seconds * 1000).toUTCString(),
  };
}

/** Mocks a listing page by page, with Okta's self and next Link headers and `after` cursors. */
function paged(path: string, query: Record<string, string>, pages: unknown[][], headers: Record<string, string> = {}): nock.Scope {
  const scope = nock(ORG).matchHeader('authorization', `SSWS ${TOKEN}`);
  pages.forEach((items, i) => {
    const here = i === 0 ? query : { ...query, after: `cursor${i}` };
    const links = [`<${ORG}${path}?${new URLSearchParams(here)}>; rel="self"`];
    if (i < pages.length - 1) links.push(`<${ORG}${path}?${new URLSearchParams({ ...query, after: `cursor${i + 1}` })}>; rel="next"`);
    scope
      .get(path)
      .query(here)
      .reply(200, items, { 'content-type': 'application/json', link: links, ...rateHeaders(), ...headers });
  });
  return scope;
}

function configFor(overrides: Record<string, unknown> = {}) {
  return oktaSourceConfigSchema.parse({
    type: 'okta',
    orgUrl: ORG,
    auth: { method: 'apiToken', apiToken: TOKEN },
    scope: { mode: 'app', appId: APP },
    pageSize: 2,
    ...overrides,
  });
}

function sourceFor(overrides: Record<string, unknown> = {}, deps: { state?: MemoryStateStore; now?: () => number; log?: Logger } = {}) {
  return createOktaSource(configFor(overrides), {
    state: deps.state ?? new MemoryStateStore(),
    log: deps.log ?? log,
    backoff: FAST,
    ...(deps.now ? { now: deps.now } : {}),
  });
}

// nock 14 hangs on plain-object errors: it needs a real Error.
function networkError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

async function readError(promise: Promise<unknown>): Promise<SourceReadError> {
  const err = await promise.then(
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

describe('okta source, app scope', () => {
  const alice = oktaUser('00u1alice', 'ACTIVE', { displayName: 'Alice A.', preferredLanguage: 'de' });
  const bob = oktaUser('00u2bob', 'SUSPENDED');
  const carol = oktaUser('00u3carol', 'PASSWORD_EXPIRED');
  const dave = oktaUser('00u4dave', 'DEPROVISIONED');
  const erin = oktaUser('00u5erin', 'LOCKED_OUT');
  const support = oktaGroup('00g1support', 'Support');
  const sales = oktaGroup('00g2sales', 'Sales');

  function mockGroups() {
    paged(`/api/v1/apps/${APP}/groups`, { limit: '20', expand: 'group' }, [[appGroup(support), appGroup(sales, false)]]);
    paged('/api/v1/groups/00g1support/users', { limit: '2' }, [[bob, carol], [erin]]);
    nock(ORG).get('/api/v1/groups/00g2sales').reply(200, sales, rateHeaders());
    // 00u9other is a member but not assigned (its assignment record was skipped): left out
    paged('/api/v1/groups/00g2sales/users', { limit: '2' }, [[alice, oktaUser('00u9other')]]);
  }

  it('reads every page of assigned users (direct and via groups) and the assigned groups with their members', async () => {
    const users = paged(`/api/v1/apps/${APP}/users`, { limit: '2', expand: 'user' }, [
      [appUser(alice), appUser(bob, 'GROUP')],
      [appUser(carol, 'GROUP'), appUser(dave)],
      [appUser(erin, 'GROUP')],
    ]);
    mockGroups();
    const read = await sourceFor().read();

    expect(users.isDone()).toBe(true);
    expect(nock.pendingMocks()).toEqual([]);
    expect(read.complete).toBe(true);
    expect(read.issues).toEqual([]);
    expect(read.users).toEqual([
      {
        id: '00u1alice',
        active: true,
        email: '00u1alice@example.com',
        displayName: 'Alice A.',
        givenName: 'First 00u1alice',
        familyName: 'Last 00u1alice',
        preferredLanguage: 'de',
      },
      { id: '00u2bob', active: false, email: '00u2bob@example.com', givenName: 'First 00u2bob', familyName: 'Last 00u2bob' },
      { id: '00u3carol', active: true, email: '00u3carol@example.com', givenName: 'First 00u3carol', familyName: 'Last 00u3carol' },
      { id: '00u4dave', active: false, email: '00u4dave@example.com', givenName: 'First 00u4dave', familyName: 'Last 00u4dave' },
      { id: '00u5erin', active: true, email: '00u5erin@example.com', givenName: 'First 00u5erin', familyName: 'Last 00u5erin' },
    ]);
    expect(read.groups).toEqual([
      { id: '00g1support', name: 'Support', memberIds: ['00u2bob', '00u3carol', '00u5erin'] },
      { id: '00g2sales', name: 'Sales', memberIds: ['00u1alice'] },
    ]);
  });

  it('maps every Okta status: only activated, usable accounts are active', async () => {
    const statuses: Status[] = ['STAGED', 'PROVISIONED', 'ACTIVE', 'RECOVERY', 'LOCKED_OUT', 'PASSWORD_EXPIRED', 'SUSPENDED', 'DEPROVISIONED'];
    paged(`/api/v1/apps/${APP}/users`, { limit: '200', expand: 'user' }, [statuses.map((s) => appUser(oktaUser(`00u${s}`, s)))]);
    paged(`/api/v1/apps/${APP}/groups`, { limit: '200', expand: 'group' }, [[]]);
    const read = await sourceFor({ pageSize: 200 }).read();
    expect(Object.fromEntries(read.users.map((u) => [u.id.slice(3), u.active]))).toEqual({
      STAGED: false,
      PROVISIONED: false,
      ACTIVE: true,
      RECOVERY: true,
      LOCKED_OUT: true,
      PASSWORD_EXPIRED: true,
      SUSPENDED: false,
      DEPROVISIONED: false,
    });
  });

  it('takes the e-mail from login when told to', async () => {
    paged(`/api/v1/apps/${APP}/users`, { limit: '2', expand: 'user' }, [
      [appUser(oktaUser('00u1x', 'ACTIVE', { login: 'Jane.Doe@Example.com', email: null }))],
    ]);
    paged(`/api/v1/apps/${APP}/groups`, { limit: '20', expand: 'group' }, [[]]);
    const read = await sourceFor({ emailAttribute: 'login' }).read();
    expect(read.users[0]?.email).toBe('Jane.Doe@Example.com');
  });

  it('skips a malformed record with an issue and keeps the rest', async () => {
    const broken = { ...oktaUser('00u7broken'), status: 'WHATEVER' };
    paged(`/api/v1/apps/${APP}/users`, { limit: '2', expand: 'user' }, [
      [appUser(alice), appUser(broken as unknown as ReturnType<typeof oktaUser>)],
      [appUser(carol, 'USER', false), { scope: 'USER' }],
    ]);
    paged(`/api/v1/apps/${APP}/groups`, { limit: '20', expand: 'group' }, [[appGroup(support)]]);
    paged('/api/v1/groups/00g1support/users', { limit: '2' }, [[alice, { id: 42 }]]);
    const read = await sourceFor().read();
    expect(read.complete).toBe(true);
    expect(read.users.map((u) => u.id)).toEqual(['00u1alice']);
    expect(read.groups).toEqual([{ id: '00g1support', name: 'Support', memberIds: ['00u1alice'] }]);
    expect(read.issues).toEqual([
      { kind: 'user', objectId: '00u7broken', reason: expect.stringContaining('status') },
      { kind: 'user', objectId: '00u3carol', reason: expect.stringContaining('without its user') },
      { kind: 'user', objectId: undefined, reason: expect.stringContaining('id') },
      { kind: 'membership', objectId: '00g1support', reason: expect.stringContaining('no id') },
    ]);
  });

  it('fails the read when a page is not a list', async () => {
    nock(ORG).get(`/api/v1/apps/${APP}/users`).query(true).reply(200, { errorCode: 'E0000000', items: [] }, rateHeaders());
    const err = await readError(sourceFor().read());
    expect(err.message).toMatch(/page 1 of \/api\/v1\/apps\/.*\/users with something other than a list/);
  });

  it('throws SourceReadError when page 3 of 5 keeps failing, never a partial list', async () => {
    const path = `/api/v1/apps/${APP}/users`;
    const failing = nock(ORG)
      .get(path)
      .query({ limit: '2', expand: 'user', after: 'cursor2' })
      .times(3)
      .reply(500, { errorCode: 'E0000009', errorSummary: 'Internal Server Error' });
    const pages = [0, 1, 2, 3, 4].map((i) => [appUser(oktaUser(`00u${i}a`)), appUser(oktaUser(`00u${i}b`))]);
    let served = 0;
    paged(path, { limit: '2', expand: 'user' }, pages).on('replied', () => served++);
    const state = new MemoryStateStore();
    const err = await readError(sourceFor({ incremental: { enabled: true } }, { state }).read());
    expect(failing.isDone()).toBe(true);
    expect(err.message).toContain(`GET ${path} answered 500 (E0000009 Internal Server Error)`);
    expect(err.cause).toMatchObject({ failureClass: 'transient', status: 500 });
    // pages 1 and 2 only: 3 (its good answer never reached), 4 and 5 stay unread; nothing stored
    expect(served).toBe(2);
    expect(await state.get('okta:snapshot')).toBeUndefined();
  });

  it('waits until x-rate-limit-reset after a 429, then carries on', async () => {
    const seconds = Math.floor(Date.now() / 1000);
    nock(ORG)
      .get(`/api/v1/apps/${APP}/users`)
      .query({ limit: '2', expand: 'user' })
      .reply(
        429,
        { errorCode: 'E0000047', errorSummary: 'API call exceeded rate limit due to too many requests.' },
        {
          'x-rate-limit-limit': '600',
          'x-rate-limit-remaining': '0',
          'x-rate-limit-reset': String(seconds + 1),
          date: new Date(seconds * 1000).toUTCString(),
        },
      );
    paged(`/api/v1/apps/${APP}/users`, { limit: '2', expand: 'user' }, [[appUser(alice)]]);
    paged(`/api/v1/apps/${APP}/groups`, { limit: '20', expand: 'group' }, [[]]);
    const started = Date.now();
    const read = await sourceFor().read();
    const waited = Date.now() - started;
    expect(read.users.map((u) => u.id)).toEqual(['00u1alice']);
    expect(waited).toBeGreaterThanOrEqual(950);
    expect(waited).toBeLessThan(1900);
  });

  it('slows down when x-rate-limit-remaining is nearly used up', async () => {
    const seconds = Math.floor(Date.now() / 1000);
    const nearlyOut = { 'x-rate-limit-remaining': '0', 'x-rate-limit-reset': String(seconds + 1), date: new Date(seconds * 1000).toUTCString() };
    paged(`/api/v1/apps/${APP}/users`, { limit: '2', expand: 'user' }, [[appUser(alice)], [appUser(carol)]], nearlyOut);
    paged(`/api/v1/apps/${APP}/groups`, { limit: '20', expand: 'group' }, [[]]);
    const started = Date.now();
    await sourceFor().read();
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });

  it('retries 5xx answers and connection resets', async () => {
    const path = `/api/v1/apps/${APP}/users`;
    nock(ORG).get(path).query(true).reply(503, 'Service Unavailable');
    nock(ORG).get(path).query(true).replyWithError(networkError('ECONNRESET', 'socket hang up'));
    paged(path, { limit: '2', expand: 'user' }, [[appUser(alice)]]);
    paged(`/api/v1/apps/${APP}/groups`, { limit: '20', expand: 'group' }, [[]]);
    const read = await sourceFor().read();
    expect(read.users).toHaveLength(1);
  });

  it('stops a listing that runs past maxPages, and refuses a next link to another host', async () => {
    const path = `/api/v1/apps/${APP}/users`;
    paged(path, { limit: '2', expand: 'user' }, [[appUser(alice)], [appUser(bob)], [appUser(carol)]]);
    const capped = await readError(sourceFor({ maxPages: 2 }).read());
    expect(capped.message).toContain('did not end within 2 pages; raise maxPages');

    nock.cleanAll();
    nock(ORG)
      .get(path)
      .query(true)
      .reply(200, [appUser(alice)], { link: `<https://elsewhere.example.com${path}?after=x>; rel="next"` });
    const elsewhere = await readError(sourceFor().read());
    expect(elsewhere.message).toContain('points to https://elsewhere.example.com');
  });
});

describe('okta source, group scope', () => {
  it('reads the configured groups and their members (users come with the memberships)', async () => {
    const amy = oktaUser('00uAmy');
    const ben = oktaUser('00uBen', 'STAGED');
    const cat = oktaUser('00uCat', 'RECOVERY');
    nock(ORG).get('/api/v1/groups/00gA').reply(200, oktaGroup('00gA', 'Engineering'), rateHeaders());
    nock(ORG).get('/api/v1/groups/00gB').reply(200, oktaGroup('00gB', 'Ops'), rateHeaders());
    paged('/api/v1/groups/00gA/users', { limit: '2' }, [[amy, ben], [cat]]);
    paged('/api/v1/groups/00gB/users', { limit: '2' }, [[cat]]);
    const source = sourceFor({ scope: { mode: 'groups', groupIds: ['00gA', '00gB'] } });
    const read = await source.read();
    expect(nock.pendingMocks()).toEqual([]);
    expect(read.users.map((u) => [u.id, u.active]).sort()).toEqual([
      ['00uAmy', true],
      ['00uBen', false],
      ['00uCat', true],
    ]);
    expect(read.groups).toEqual([
      { id: '00gA', name: 'Engineering', memberIds: ['00uAmy', '00uBen', '00uCat'] },
      { id: '00gB', name: 'Ops', memberIds: ['00uCat'] },
    ]);

    // The next read sees fresh answers (the SDK's response cache would replay the first ones).
    nock(ORG).get('/api/v1/groups/00gA').reply(200, oktaGroup('00gA', 'Platform'), rateHeaders());
    nock(ORG).get('/api/v1/groups/00gB').reply(200, oktaGroup('00gB', 'Ops'), rateHeaders());
    paged('/api/v1/groups/00gA/users', { limit: '2' }, [[amy]]);
    paged('/api/v1/groups/00gB/users', { limit: '2' }, [[]]);
    const again = await source.read();
    expect(nock.pendingMocks()).toEqual([]);
    expect(again.users.map((u) => u.id)).toEqual(['00uAmy']);
    expect(again.groups).toEqual([
      { id: '00gA', name: 'Platform', memberIds: ['00uAmy'] },
      { id: '00gB', name: 'Ops', memberIds: [] },
    ]);
  });

  it('fails the read when a configured group does not exist', async () => {
    nock(ORG)
      .get('/api/v1/groups/00gGone')
      .reply(404, { errorCode: 'E0000007', errorSummary: 'Not found: Resource not found: 00gGone (UserGroup)', errorCauses: [] });
    const err = await readError(sourceFor({ scope: { mode: 'groups', groupIds: ['00gGone'] } }).read());
    expect(err.message).toContain('GET /api/v1/groups/00gGone answered 404');
    expect(err.message).toContain('check orgUrl and the app id or group ids');
  });
});

describe('okta source, group lookup', () => {
  const auth = { reqheaders: { authorization: `SSWS ${TOKEN}` } };

  it('says deleted for a group Okta no longer has and out-of-scope for one it still has', async () => {
    const api = nock(ORG, auth)
      .get('/api/v1/groups/00gGone')
      .reply(
        404,
        {
          errorCode: 'E0000007',
          errorSummary: 'Not found: Resource not found: 00gGone (UserGroup)',
          errorLink: 'E0000007',
          errorId: 'oaeX1lookup404',
          errorCauses: [],
        },
        rateHeaders(),
      )
      .get('/api/v1/groups/00gKept')
      .reply(200, oktaGroup('00gKept', 'Kept'), rateHeaders());
    const answers = await sourceFor().lookupGroups?.(['00gGone', '00gKept']);
    expect(api.isDone()).toBe(true);
    expect(answers).toEqual(
      new Map([
        ['00gGone', 'deleted'],
        ['00gKept', 'out-of-scope'],
      ]),
    );
  });

  it('throws when Okta keeps failing, without the token in the error', async () => {
    const api = nock(ORG, auth)
      .get('/api/v1/groups/00gFlaky')
      .times(3)
      .reply(500, {
        errorCode: 'E0000009',
        errorSummary: `Internal Server Error (SSWS ${TOKEN})`,
        errorLink: 'E0000009',
        errorId: 'oaeX1lookup500',
        errorCauses: [],
      });
    const err = await sourceFor()
      .lookupGroups?.(['00gFlaky'])
      .catch((e: unknown) => e);
    expect(api.isDone()).toBe(true);
    expect(err).toBeInstanceOf(SyncError);
    expect(err).toMatchObject({ failureClass: 'transient', status: 500 });
    const e = err as Error;
    expect(e.message).toContain('GET /api/v1/groups/00gFlaky answered 500 (E0000009');
    for (const text of [e.message, e.stack ?? '', JSON.stringify(e), inspect(e, { depth: Infinity, showHidden: true })]) {
      expect(text).not.toContain(TOKEN);
    }
  });
});

describe('okta source, incremental reads', () => {
  const u1 = oktaUser('00u1');
  const u2 = oktaUser('00u2');
  const u3 = oktaUser('00u3');
  const u4 = oktaUser('00u4', 'ACTIVE', { email: 'newly.assigned@example.com' });
  const team = oktaGroup('00gTeam', 'Team');
  const firstDate = Date.parse('2026-11-02T12:00:00.000Z');

  function mockTeam(members: unknown[]) {
    paged(`/api/v1/apps/${APP}/groups`, { limit: '20', expand: 'group' }, [[appGroup(team)]]);
    paged('/api/v1/groups/00gTeam/users', { limit: '2' }, [members]);
  }

  it('re-reads assignments and memberships, fetches only changed attributes, and returns the whole scope', async () => {
    let clock = 1_000_000;
    const state = new MemoryStateStore();
    const source = sourceFor({ incremental: { enabled: true, fullReadEvery: '1d' } }, { state, now: () => clock });

    paged(`/api/v1/apps/${APP}/users`, { limit: '2', expand: 'user' }, [[appUser(u1), appUser(u2)], [appUser(u3)]], rateHeaders(599, firstDate));
    mockTeam([u1, u3]);
    const first = await source.read();
    expect(first.users.map((u) => u.id)).toEqual(['00u1', '00u2', '00u3']);

    // Since then: u3 was unassigned (its lastUpdated does not move), u2 deprovisioned (it does),
    // u4 assigned (an old lastUpdated), 00u8 changed but is not in scope; u3 left the group.
    clock += 3_600_000;
    paged(`/api/v1/apps/${APP}/users`, { limit: '2' }, [[appUser(u1, 'USER', false), appUser(u2, 'USER', false)], [appUser(u4, 'USER', false)]]);
    const changes = paged('/api/v1/users', { limit: '2', filter: 'lastUpdated gt "2026-11-02T11:55:00.000Z"' }, [
      [oktaUser('00u2', 'DEPROVISIONED'), oktaUser('00u8')],
    ]);
    nock(ORG).get('/api/v1/users/00u4').reply(200, u4, rateHeaders());
    mockTeam([u1, u4]);
    const second = await source.read();
    expect(changes.isDone()).toBe(true);
    expect(nock.pendingMocks()).toEqual([]);
    expect(second.complete).toBe(true);
    expect(second.users).toEqual([
      { id: '00u1', active: true, email: '00u1@example.com', givenName: 'First 00u1', familyName: 'Last 00u1' },
      { id: '00u2', active: false, email: '00u2@example.com', givenName: 'First 00u2', familyName: 'Last 00u2' },
      { id: '00u4', active: true, email: 'newly.assigned@example.com', givenName: 'First 00u4', familyName: 'Last 00u4' },
    ]);
    expect(second.groups).toEqual([{ id: '00gTeam', name: 'Team', memberIds: ['00u1', '00u4'] }]);

    // Asked for, or a day after the last full read: full again.
    paged(`/api/v1/apps/${APP}/users`, { limit: '2', expand: 'user' }, [[appUser(u1)]]);
    mockTeam([u1]);
    expect((await source.read({ mode: 'full' })).users.map((u) => u.id)).toEqual(['00u1']);
    clock += 86_400_000;
    paged(`/api/v1/apps/${APP}/users`, { limit: '2', expand: 'user' }, [[appUser(u2)]]);
    mockTeam([]);
    expect((await source.read()).users.map((u) => u.id)).toEqual(['00u2']);
    expect(nock.pendingMocks()).toEqual([]);
  });

  it('reads fully when too many users are newly assigned to fetch one by one', async () => {
    const state = new MemoryStateStore();
    const source = sourceFor({ incremental: { enabled: true } }, { state, now: () => 0 });
    paged(`/api/v1/apps/${APP}/users`, { limit: '2', expand: 'user' }, [[appUser(u1)]], rateHeaders(599, firstDate));
    mockTeam([]);
    await source.read();

    paged(`/api/v1/apps/${APP}/users`, { limit: '2' }, [
      [appUser(u1, 'USER', false), appUser(u2, 'USER', false)],
      [appUser(u3, 'USER', false), appUser(u4, 'USER', false)],
    ]);
    paged('/api/v1/users', { limit: '2', filter: 'lastUpdated gt "2026-11-02T11:55:00.000Z"' }, [[]]);
    paged(`/api/v1/apps/${APP}/users`, { limit: '2', expand: 'user' }, [
      [appUser(u1), appUser(u2)],
      [appUser(u3), appUser(u4)],
    ]);
    mockTeam([]);
    const read = await source.read();
    expect(read.users.map((u) => u.id)).toEqual(['00u1', '00u2', '00u3', '00u4']);
    expect(nock.pendingMocks()).toEqual([]);
  });
});

describe('okta source, check()', () => {
  it('reports each thing it tried', async () => {
    nock(ORG)
      .matchHeader('authorization', `SSWS ${TOKEN}`)
      .get(`/api/v1/apps/${APP}/users`)
      .query({ limit: '1', expand: 'user' })
      .reply(200, [appUser(oktaUser('00u1'))]);
    nock(ORG)
      .get(`/api/v1/apps/${APP}/groups`)
      .query({ limit: '20' })
      .reply(200, [appGroup(oktaGroup('00g1', 'G'), false)]);
    const result = await sourceFor().check();
    expect(result).toEqual({
      ok: true,
      checks: [
        { name: 'assigned users', ok: true, detail: 'read a user assigned to the app' },
        { name: 'assigned groups', ok: true, detail: 'read 1 group(s) assigned to the app' },
      ],
    });
  });

  it('says so when System Log polling is asked for but the service app lacks okta.logs.read', async () => {
    const { privateKey } = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    });
    const byKey = (changes: Record<string, unknown>) => sourceFor({ auth: { method: 'privateKey', clientId: '0oaservice', privateKey }, changes });
    // Without the scope and not asked for: off, and nothing to say.
    expect(await byKey({}).changeFeed?.()).toBeUndefined();
    // Asked for without the scope: still off, and the connection check says so in one line.
    const lines = byKey({ systemLog: { enabled: true } });
    expect(await lines.changeFeed?.()).toBeUndefined();
    nock(ORG).post('/oauth2/v1/token').reply(400, { error: 'invalid_client', error_description: 'nope' });
    const refused = await lines.check();
    expect(refused.checks.at(-1)).toEqual({
      name: 'system log',
      ok: false,
      detail: expect.stringMatching(/^changes\.systemLog is enabled but the service app's scopes do not include okta\.logs\.read/),
    });
    expect(nock.pendingMocks()).toEqual([]);
  });

  it('says what failed instead of throwing: refused token, missing rights, unreachable org', async () => {
    nock(ORG).get(`/api/v1/apps/${APP}/users`).query(true).reply(401, { errorCode: 'E0000011', errorSummary: 'Invalid token provided', errorCauses: [] });
    const refused = await sourceFor().check();
    expect(refused.ok).toBe(false);
    expect(refused.checks).toEqual([{ name: 'assigned users', ok: false, detail: expect.stringContaining('Okta refused the API token') }]);

    nock(ORG)
      .get('/api/v1/users')
      .query(true)
      .reply(200, [oktaUser('00u1')]);
    nock(ORG).get('/api/v1/groups/00gX').reply(403, { errorCode: 'E0000006', errorSummary: 'You do not have permission to perform the requested action' });
    const forbidden = await sourceFor({ scope: { mode: 'groups', groupIds: ['00gX'] } }).check();
    expect(forbidden.ok).toBe(false);
    expect(forbidden.checks.map((c) => [c.name, c.ok])).toEqual([
      ['users', true],
      ['group 00gX', false],
    ]);
    expect(forbidden.checks[1]?.detail).toContain('403 (E0000006');

    nock(ORG).get(`/api/v1/apps/${APP}/users`).query(true).replyWithError(networkError('ECONNREFUSED', 'connect ECONNREFUSED'));
    const unreachable = await sourceFor().check();
    expect(unreachable).toEqual({
      ok: false,
      checks: [{ name: 'assigned users', ok: false, detail: expect.stringContaining('could not be reached') }],
    });
    expect(nock.pendingMocks()).toEqual([]);
  });
});

describe('okta source, credentials', () => {
  it('ignores OKTA_CLIENT_* variables and okta.yaml files', async () => {
    const saved = { ...process.env };
    const cwd = process.cwd();
    const dir = mkdtempSync(join(tmpdir(), 'tvsync-okta-'));
    writeFileSync(join(dir, 'okta.yaml'), 'okta:\n  client:\n    orgUrl: https://yaml.example.com\n    token: yaml-token\n    userAgent: yaml-agent\n');
    try {
      process.chdir(dir);
      Object.assign(process.env, {
        OKTA_CLIENT_TOKEN: 'bogus-env-token',
        OKTA_CLIENT_ORGURL: 'https://env.example.com',
        OKTA_CLIENT_AUTHORIZATIONMODE: 'PrivateKey',
        OKTA_CLIENT_CLIENTID: 'env-client',
      });
      nock(ORG)
        .matchHeader('authorization', `SSWS ${TOKEN}`)
        .matchHeader('user-agent', (ua) => ua.startsWith('tvsync ') && !ua.includes('yaml'))
        .get(`/api/v1/apps/${APP}/users`)
        .query(true)
        .reply(200, [appUser(oktaUser('00u1'))]);
      nock(ORG).matchHeader('authorization', `SSWS ${TOKEN}`).get(`/api/v1/apps/${APP}/groups`).query(true).reply(200, []);
      const read = await sourceFor().read();
      expect(read.users.map((u) => u.id)).toEqual(['00u1']);
      expect(nock.pendingMocks()).toEqual([]);
    } finally {
      process.chdir(cwd);
      for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
      Object.assign(process.env, saved);
    }
  });

  it('does not route through an HTTPS_PROXY from the environment (real local server)', async () => {
    const server = createServer((req, res) => {
      const body = req.url?.startsWith(`/api/v1/apps/${APP}/users`) ? [appUser(oktaUser('00u1'))] : [];
      res.writeHead(req.headers.authorization === `SSWS ${TOKEN}` ? 200 : 401, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    // nock's pass-through drops the agent, so it must be out of the way to see a proxy at all
    nock.restore();
    const saved = process.env.HTTPS_PROXY;
    process.env.HTTPS_PROXY = 'http://127.0.0.1:9'; // nothing listens there
    try {
      const read = await sourceFor({ orgUrl: `http://127.0.0.1:${port}` }).read();
      expect(read.users.map((u) => u.id)).toEqual(['00u1']);
    } finally {
      if (saved === undefined) delete process.env.HTTPS_PROXY;
      else process.env.HTTPS_PROXY = saved;
      nock.activate();
      server.close();
    }
  });

  it('signs in as a service app with a private key and sends the bearer token', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
    let assertion = '';
    nock(ORG)
      .post('/oauth2/v1/token', (body: Record<string, string>) => {
        assertion = body.client_assertion ?? '';
        return body.grant_type === 'client_credentials' && body.scope === 'okta.users.read okta.groups.read okta.apps.read';
      })
      .reply(200, { token_type: 'Bearer', expires_in: 3600, access_token: 'at-service-1', scope: 'okta.users.read okta.groups.read okta.apps.read' });
    nock(ORG)
      .matchHeader('authorization', 'Bearer at-service-1')
      .get(`/api/v1/apps/${APP}/users`)
      .query(true)
      .reply(200, [appUser(oktaUser('00u1'))]);
    nock(ORG).matchHeader('authorization', 'Bearer at-service-1').get(`/api/v1/apps/${APP}/groups`).query(true).reply(200, []);
    const read = await sourceFor({ auth: { method: 'privateKey', clientId: '0oaServiceApp', privateKey: pem, keyId: 'kid-1' } }).read();
    expect(read.users).toHaveLength(1);
    const header = JSON.parse(Buffer.from(assertion.split('.')[0] ?? '', 'base64url').toString()) as { kid?: string };
    expect(header.kid).toBe('kid-1');
  });

  it('reports a refused service app clearly', async () => {
    nock(ORG).post('/oauth2/v1/token').reply(401, { error: 'invalid_client', error_description: 'The client_assertion signature is invalid.' });
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
    const result = await sourceFor({ auth: { method: 'privateKey', clientId: '0oaServiceApp', privateKey: pem } }).check();
    expect(result.ok).toBe(false);
    expect(result.checks).toEqual([
      { name: 'access token', ok: false, detail: expect.stringContaining('invalid_client: The client_assertion signature is invalid.') },
    ]);
  });

  it('never puts a secret in a thrown error', async () => {
    // Even if Okta echoed the credential back, it must not reach the message, stack or JSON.
    nock(ORG)
      .get(`/api/v1/apps/${APP}/users`)
      .query(true)
      .reply(401, { errorCode: 'E0000011', errorSummary: `Invalid token provided: SSWS ${TOKEN}` });
    const err = await readError(sourceFor().read());
    for (const text of [err.message, err.stack ?? '', JSON.stringify(err), JSON.stringify(err.cause), String(err.cause)]) {
      expect(text).not.toContain(TOKEN);
    }
    expect(err.message).toContain('[REDACTED]');
    expect(err.cause).toMatchObject({ failureClass: 'unauthorised', status: 401 });

    const badKey = '-----BEGIN PRIVATE KEY-----\nbm90LWEta2V5LXNlY3JldC1tYXRlcmlhbA==\n-----END PRIVATE KEY-----';
    const keyErr = await readError(sourceFor({ auth: { method: 'privateKey', clientId: '0oaServiceApp', privateKey: badKey } }).read());
    expect(keyErr.message).toContain('privateKey must be an RSA or EC private key');
    for (const text of [keyErr.message, keyErr.stack ?? '', JSON.stringify(keyErr)]) expect(text).not.toContain('bm90LWEta2V5');
  });

  it('accepts only https org URLs, except for a local test double', () => {
    expect(() => configFor({ orgUrl: 'http://acme.okta.com' })).toThrow(/https/);
    expect(configFor({ orgUrl: 'http://127.0.0.1:8080/' }).orgUrl).toBe('http://127.0.0.1:8080');
  });
});

describe('okta source, transport: secrets, redirects and bounded waits', () => {
  const ACCESS_TOKEN = 'eyJraWQiOiJ0dnN5bmMifQ.eyJzdWIiOiIwb2FTZXJ2aWNlQXBwIn0.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg';
  const serviceApp = () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    return { auth: { method: 'privateKey', clientId: '0oaServiceApp', privateKey: privateKey.export({ type: 'pkcs1', format: 'pem' }).toString() } };
  };
  // The header as sent, then the token alone in each form a server may echo it.
  const echo = (secret: string, scheme: string) => ({
    errorCode: 'E0000011',
    errorSummary: `Invalid token provided: ${scheme} ${secret}; token=${echoedForms(secret).join(' ')} header=${Buffer.from(`${scheme} ${secret}`).toString('base64')}`,
    errorCauses: [{ errorSummary: `Authorization: ${scheme} ${secret}` }],
  });

  it('keeps an echoed API token (raw, URL-encoded, base64) out of errors and log lines', async () => {
    const { lines, log: captured } = capturedLogger();
    nock(ORG)
      .get(`/api/v1/apps/${APP}/users`)
      .query(true)
      .reply(500, { errorCode: 'E0000009', errorSummary: `Internal error for ${echoedForms(TOKEN).join(' ')}` })
      .get(`/api/v1/apps/${APP}/users`)
      .query(true)
      .reply(401, echo(TOKEN, 'SSWS'));
    const err = await readError(sourceFor({}, { log: captured }).read());

    expect(err.message).toMatch(/answered 401 \(E0000011 Invalid token provided: SSWS \[REDACTED\]/);
    expect(lines.some((l) => l.includes('retrying') && l.includes('[REDACTED]'))).toBe(true);
    expectNoLeak(TOKEN, err, err.cause, lines.join('\n'));
  });

  it("registers the service app's access token as soon as it is obtained, so an echo of it is scrubbed", async () => {
    const { lines, log: captured } = capturedLogger();
    const token = nock(ORG)
      .post('/oauth2/v1/token')
      .times(2) // the SDK fetches a fresh token once after a 401
      .reply(200, { token_type: 'Bearer', expires_in: 3600, access_token: ACCESS_TOKEN, scope: 'okta.users.read' });
    nock(ORG).get(`/api/v1/apps/${APP}/users`).query(true).times(2).reply(401, echo(ACCESS_TOKEN, 'Bearer'));
    const err = await readError(sourceFor(serviceApp(), { log: captured }).read());

    expect(token.isDone()).toBe(true);
    expect(err.cause).toMatchObject({ failureClass: 'unauthorised', status: 401 });
    expectNoLeak(ACCESS_TOKEN, err, err.cause, lines.join('\n'));
  });

  it('sends no credential to another host: a redirect of an API call or of the token request fails the read', async () => {
    const collector = nock('https://collector.example').get(/.*/).reply(200, []).post(/.*/).reply(200, {});
    nock(ORG).get(`/api/v1/apps/${APP}/users`).query(true).reply(302, '', { location: 'https://collector.example/api/v1/apps' });
    const apiErr = await readError(sourceFor().read());
    expect(apiErr.message).toMatch(
      /Okta answered GET \/api\/v1\/apps\/\w+\/users with a redirect \(HTTP 302\) to https:\/\/collector\.example; tvsync sends credentials only to the configured host/,
    );
    expect(apiErr.cause).toMatchObject({ failureClass: 'invalid', status: 302 });

    nock(ORG).post('/oauth2/v1/token').reply(307, '', { location: 'https://collector.example/oauth2/v1/token' });
    const tokenErr = await readError(sourceFor(serviceApp()).read());
    expect(tokenErr.message).toMatch(/Okta answered POST \/oauth2\/v1\/token with a redirect \(HTTP 307\) to https:\/\/collector\.example/);
    expect(collector.pendingMocks()).toHaveLength(2); // neither request reached the other host
  });

  it('ends a request whose body trickles past the timeout', async () => {
    const server = await tricklingServer();
    // Real sockets: nock's stand-ins do not keep a socket's idle timer the way Node does.
    nock.restore();
    try {
      const err = await readError(sourceFor({ orgUrl: server.origin, timeout: 1000 }).read());
      expect(err.message).toMatch(/Okta GET \/api\/v1\/apps\/\w+\/users did not finish within 1 second \(timeout\)/);
      expect(err.cause).toMatchObject({ failureClass: 'transient' });
      expect(server.requests).toHaveLength(FAST.attempts);
    } finally {
      nock.activate();
      server.close();
    }
  }, 20_000);

  it('refuses an answer larger than it reads', async () => {
    nock(ORG)
      .get(`/api/v1/apps/${APP}/users`)
      .query(true)
      .reply(200, Buffer.alloc(33 * 1024 * 1024, 0x20), { 'content-type': 'application/json' });
    const err = await readError(sourceFor().read());
    expect(err.message).toMatch(/Okta answered GET \/api\/v1\/apps\/\w+\/users with more than 32 MiB; not read/);
  });

  it('fails at once, naming the wait, when x-rate-limit-reset is days away', async () => {
    const nowSeconds = Math.floor(Date.now() / 1000);
    const api = nock(ORG)
      .get(`/api/v1/apps/${APP}/users`)
      .query(true)
      .reply(
        429,
        { errorCode: 'E0000047', errorSummary: 'API call exceeded rate limit due to too many requests.' },
        {
          'x-rate-limit-limit': '600',
          'x-rate-limit-remaining': '0',
          'x-rate-limit-reset': String(nowSeconds + 999_999),
          date: new Date(nowSeconds * 1000).toUTCString(),
        },
      );
    const err = await readError(sourceFor().read());
    expect(api.isDone()).toBe(true);
    expect(err.message).toMatch(/answered 429 .*Okta asks to wait 11\.6 days before the next request, longer than tvsync waits within a read/);
    expect(err.cause).toMatchObject({ failureClass: 'rate-limited', retryAfterMs: 999_999_000 });
  }, 10_000);
});
