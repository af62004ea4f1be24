import nock from 'nock';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ChangeFeed } from '../../../src/connectors/changes.js';
import { oktaSourceConfigSchema } from '../../../src/connectors/okta/config.js';
import { createOktaSource } from '../../../src/connectors/okta/source.js';
import { POSITION_KEY } from '../../../src/connectors/okta/system-log.js';
import { SourceReadError } from '../../../src/connectors/source.js';
import type { BackoffPolicy } from '../../../src/net/retry.js';
import { MemoryStateStore } from '../../../src/store/memory-state.js';
import { expectNoLeak } from '../../support/leaks.js';
import { rateHeaders } from '../../support/okta-fake.js';

/** The okta-system-log feed against a nock'd /api/v1/logs in Okta's wire format. */

const ORG = 'https://tvsync-feed.okta.com';
const TOKEN = '00aFeedApiToken_Qm4vT8wY2kR6';
const APP = '0oa1tvsyncfeed001';
const OTHER_APP = '0oa1someotherapp1';
const FAST: BackoffPolicy = { attempts: 3, baseMs: 1, capMs: 5, maxWaitMs: 2000 };
const log = pino({ level: 'silent' });

const T0 = '2026-11-30T10:00:00.000Z';
const T1 = '2026-11-30T10:00:05.123Z';
const T2 = '2026-11-30T10:00:07.456Z';

type Target = { id: string; type: string; alternateId?: string; displayName?: string };
const userT = (id: string): Target => ({ id, type: 'User', alternateId: `${id}@example.com`, displayName: `User ${id}` });
const groupT = (id: string, name = 'Sales'): Target => ({ id, type: 'UserGroup', alternateId: 'unknown', displayName: name });
const appT = (id = APP): Target => ({ id, type: 'AppInstance', alternateId: 'TeamViewer', displayName: 'TeamViewer' });

/** A System Log event as GET /api/v1/logs returns it. */
function event(uuid: string, published: string, eventType: string, target: Target[], result = 'SUCCESS') {
  return {
    actor: { id: '00uadmin', type: 'User', alternateId: 'admin@example.com', displayName: 'Admin', detailEntry: null },
    client: {
      userAgent: { rawUserAgent: 'Mozilla/5.0', os: 'Mac OS X', browser: 'CHROME' },
      zone: 'null',
      device: 'Computer',
      id: null,
      ipAddress: '10.0.0.1',
    },
    authenticationContext: { authenticationStep: 0, externalSessionId: 'trs123' },
    displayMessage: eventType,
    eventType,
    outcome: { result, reason: null },
    published,
    securityContext: {},
    severity: 'INFO',
    debugContext: { debugData: {} },
    legacyEventType: null,
    transaction: { type: 'WEB', id: 'Xyz', detail: {} },
    uuid,
    version: '0',
    request: { ipChain: [] },
    target,
  };
}

function sourceFor(overrides: Record<string, unknown> = {}, state = new MemoryStateStore()) {
  const config = oktaSourceConfigSchema.parse({
    type: 'okta',
    orgUrl: ORG,
    auth: { method: 'apiToken', apiToken: TOKEN },
    scope: { mode: 'app', appId: APP },
    ...overrides,
  });
  return createOktaSource(config, { state, log, backoff: FAST });
}

async function feedFor(overrides: Record<string, unknown> = {}, state = new MemoryStateStore()): Promise<ChangeFeed> {
  const feed = await sourceFor(overrides, state).changeFeed?.();
  if (!feed) throw new Error('feed is off');
  return feed;
}

async function storedAt(state: MemoryStateStore, since: string, seen: string[] = [], next?: string): Promise<MemoryStateStore> {
  await state.set(POSITION_KEY, JSON.stringify({ since, seen, ...(next ? { next } : {}) }));
  return state;
}

async function position(state: MemoryStateStore) {
  const text = await state.get(POSITION_KEY);
  return text === undefined ? undefined : JSON.parse(text);
}

/** One polling page: the events, Okta's self link, and the next link a polling query always has. */
function logsPage(query: Record<string, string | RegExp>, events: unknown[], cursor = 'c1') {
  return nock(ORG)
    .matchHeader('authorization', `SSWS ${TOKEN}`)
    .get('/api/v1/logs')
    .query(query)
    .reply(200, events, {
      'content-type': 'application/json',
      link: [
        `<${ORG}/api/v1/logs?since=x>; rel="self"`,
        `<${ORG}/api/v1/logs?limit=1000&sortOrder=ASCENDING&after=${cursor}&filter=${encodeURIComponent(FILTER)}>; rel="next"`,
      ],
      ...rateHeaders(),
    });
}

let FILTER = '';

beforeEach(() => {
  nock.disableNetConnect();
  FILTER = '';
});
afterEach(() => {
  nock.cleanAll();
  nock.enableNetConnect();
});

async function filterOf(overrides: Record<string, unknown> = {}): Promise<string> {
  // The filter the feed sends, read back from its first request.
  let seen = '';
  nock(ORG)
    .get('/api/v1/logs')
    .query((q) => {
      seen = String(q.filter);
      return true;
    })
    .reply(200, [], rateHeaders());
  await (await feedFor(overrides)).poll();
  return seen;
}

describe('okta System Log feed', () => {
  it('is on by default with an API token, every 15 s, and its first poll only sets the position to Okta\'s "now"', async () => {
    const state = new MemoryStateStore();
    const feed = await feedFor({}, state);
    expect(feed.name).toBe('okta-system-log');
    expect(feed.everyMs).toBe(15_000);
    const oktaNow = Date.UTC(2026, 10, 30, 9, 0, 0);
    nock(ORG)
      .matchHeader('authorization', `SSWS ${TOKEN}`)
      .get('/api/v1/logs')
      .query((q) => q.sortOrder === 'ASCENDING' && q.limit === '1' && typeof q.since === 'string')
      // Events before now are history: the full cycle's business, not replayed.
      .reply(200, [event('old-1', T0, 'user.lifecycle.deactivate', [userT('00u1')])], { ...rateHeaders(), date: new Date(oktaNow).toUTCString() });
    const batch = await feed.poll();
    expect(batch.hints).toEqual([]);
    expect(batch.requests).toBe(1);
    expect(await position(state)).toBeUndefined();
    await batch.commit();
    expect(await position(state)).toEqual({ since: new Date(oktaNow).toISOString(), seen: [] });
  });

  it('turns the events that matter into hints, once each, and moves the position only on commit', async () => {
    const state = await storedAt(new MemoryStateStore(), T0);
    const feed = await feedFor({}, state);
    const events = [
      event('e1', T1, 'user.lifecycle.deactivate', [userT('00u1')]),
      event('e2', T1, 'application.user_membership.remove', [userT('00u2'), appT()]),
      event('e3', T1, 'application.user_membership.add', [userT('00u3'), appT(OTHER_APP)]),
      event('e4', T1, 'group.user_membership.add', [userT('00u4'), groupT('00g1')]),
      event('e5', T1, 'user.lifecycle.suspend', [userT('00u5')], 'FAILURE'),
      event('e6', T2, 'group.profile.update', [groupT('00g9', 'Sales EMEA')]),
      event('e7', T2, 'group.application_assignment.add', [appT(), groupT('00g8', 'Support')]),
      event('e8', T2, 'group.application_assignment.add', [appT(OTHER_APP), groupT('00g7')]),
      event('e1', T1, 'user.lifecycle.deactivate', [userT('00u1')]),
      event('e9', T2, 'user.account.update_profile', [userT('00u9')]),
    ];
    logsPage({ since: T0, sortOrder: 'ASCENDING', limit: '1000', filter: /eventType eq "user\.lifecycle\.deactivate"/ }, events);
    const batch = await feed.poll();
    expect(batch.requests).toBe(1);
    expect(batch.hints).toEqual([
      { userId: '00u1', atMs: Date.parse(T1), what: 'user.lifecycle.deactivate', eventId: 'e1' },
      { userId: '00u2', atMs: Date.parse(T1), what: 'application.user_membership.remove', eventId: 'e2' },
      { userId: '00u4', atMs: Date.parse(T1), what: 'group.user_membership.add', eventId: 'e4' },
      // No full read yet: whether the group is assigned to the app is unknown, so it counts.
      { fullCycle: 'group "Sales EMEA" was renamed or changed', atMs: Date.parse(T2), what: 'group.profile.update', eventId: 'e6' },
      { fullCycle: `the app's group assignments changed (group "Support")`, atMs: Date.parse(T2), what: 'group.application_assignment.add', eventId: 'e7' },
      { userId: '00u9', atMs: Date.parse(T2), what: 'user.account.update_profile', eventId: 'e9' },
    ]);
    expect(await position(state)).toEqual({ since: T0, seen: [] });
    await batch.commit();
    const after = await position(state);
    expect(after).toMatchObject({ since: T2, seen: ['e6', 'e7', 'e8', 'e9'] });
    expect(after.next).toContain('after=c1');
  });

  it('asks only for the event types that matter to the scope', async () => {
    const app = await filterOf();
    for (const type of [
      'user.lifecycle.create',
      'user.lifecycle.deactivate',
      'user.lifecycle.suspend',
      'user.lifecycle.unsuspend',
      'user.lifecycle.delete.initiated',
      'user.account.update_profile',
      'application.user_membership.add',
      'application.user_membership.remove',
      'group.user_membership.add',
      'group.user_membership.remove',
      'group.profile.update',
      'group.application_assignment.add',
    ]) {
      expect(app).toContain(`eventType eq "${type}"`);
    }
    expect(app).not.toContain('user.session');
    const groups = await filterOf({ scope: { mode: 'groups', groupIds: ['00g1'] } });
    expect(groups).toContain('eventType eq "group.user_membership.add"');
    expect(groups).not.toContain('application.');
  });

  it('reads nothing twice at the boundary instant, and takes an event Okta stored late once', async () => {
    const state = await storedAt(new MemoryStateStore(), T1, ['a']);
    const feed = await feedFor({}, state);
    logsPage({ since: T1, sortOrder: 'ASCENDING', limit: '1000', filter: /.+/ }, [
      event('late', T0, 'user.lifecycle.suspend', [userT('00uL')]),
      event('a', T1, 'user.lifecycle.deactivate', [userT('00uA')]),
      event('b', T1, 'user.lifecycle.deactivate', [userT('00uB')]),
    ]);
    const first = await feed.poll();
    expect(first.hints.map((h) => h.eventId)).toEqual(['late', 'b']);
    await first.commit();
    // The same instant and the late event again (the stored link refused, so from `since`): nothing new.
    expect(await position(state)).toMatchObject({ since: T1, seen: ['a', 'late', 'b'] });
    await state.set(POSITION_KEY, JSON.stringify({ ...(await position(state)), next: undefined }));
    logsPage({ since: T1, sortOrder: 'ASCENDING', limit: '1000', filter: /.+/ }, [
      event('late', T0, 'user.lifecycle.suspend', [userT('00uL')]),
      event('a', T1, 'user.lifecycle.deactivate', [userT('00uA')]),
      event('b', T1, 'user.lifecycle.deactivate', [userT('00uB')]),
      event('c', T2, 'user.lifecycle.create', [userT('00uC')]),
    ]);
    const second = await feed.poll();
    expect(second.hints.map((h) => h.eventId)).toEqual(['c']);
    await second.commit();
    expect(await position(state)).toMatchObject({ since: T2, seen: ['late', 'c'] });
  });

  it('follows Okta next links within a poll, stops at a short page, and resumes from the kept link', async () => {
    const state = await storedAt(new MemoryStateStore(), T0);
    const feed = await feedFor({ changes: { systemLog: { pageSize: 2 } } }, state);
    const scope = nock(ORG).matchHeader('authorization', `SSWS ${TOKEN}`);
    const next = (after: string) =>
      `<${ORG}/api/v1/logs?since=${encodeURIComponent(T0)}&sortOrder=ASCENDING&limit=2&filter=${encodeURIComponent(FILTER)}&after=${after}>; rel="next"`;
    FILTER = await filterOf();
    scope
      .get('/api/v1/logs')
      .query({ since: T0, sortOrder: 'ASCENDING', limit: '2', filter: FILTER })
      .reply(200, [event('p1', T1, 'user.lifecycle.create', [userT('00u1')]), event('p2', T1, 'user.lifecycle.create', [userT('00u2')])], {
        link: next('cur2'),
        ...rateHeaders(),
      })
      .get('/api/v1/logs')
      .query({ since: T0, sortOrder: 'ASCENDING', limit: '2', filter: FILTER, after: 'cur2' })
      .reply(200, [event('p3', T2, 'user.lifecycle.create', [userT('00u3')])], { link: next('cur3'), ...rateHeaders() });
    const batch = await feed.poll();
    expect(batch.hints.map((h) => h.userId)).toEqual(['00u1', '00u2', '00u3']);
    expect(batch.requests).toBe(2);
    await batch.commit();
    expect((await position(state)).next).toContain('after=cur3');

    // The next poll starts where Okta's cursor points, and an empty page is the end: one request.
    scope
      .get('/api/v1/logs')
      .query({ since: T0, sortOrder: 'ASCENDING', limit: '2', filter: FILTER, after: 'cur3' })
      .reply(200, [], { link: next('cur3'), ...rateHeaders() });
    const idle = await feed.poll();
    expect(idle).toMatchObject({ hints: [], requests: 1 });
    expect(scope.isDone()).toBe(true);
  });

  it('reads at most maxPages a poll and carries on from there the next time', async () => {
    const state = await storedAt(new MemoryStateStore(), T0);
    const feed = await feedFor({ changes: { systemLog: { pageSize: 1, maxPages: 2 } } }, state);
    FILTER = await filterOf();
    const link = (after: string) => ({
      link: `<${ORG}/api/v1/logs?sortOrder=ASCENDING&limit=1&filter=${encodeURIComponent(FILTER)}&after=${after}>; rel="next"`,
      ...rateHeaders(),
    });
    const scope = nock(ORG)
      .get('/api/v1/logs')
      .query((q) => q.since === T0)
      .reply(200, [event('m1', T1, 'user.lifecycle.create', [userT('00u1')])], link('k2'))
      .get('/api/v1/logs')
      .query((q) => q.after === 'k2')
      .reply(200, [event('m2', T1, 'user.lifecycle.create', [userT('00u2')])], link('k3'));
    const first = await feed.poll();
    expect(first.hints.map((h) => h.eventId)).toEqual(['m1', 'm2']);
    expect(first.requests).toBe(2);
    await first.commit();
    scope
      .get('/api/v1/logs')
      .query((q) => q.after === 'k3')
      .reply(200, [event('m3', T2, 'user.lifecycle.create', [userT('00u3')])], link('k4'))
      .get('/api/v1/logs')
      .query((q) => q.after === 'k4')
      .reply(200, [], link('k4'));
    const second = await feed.poll();
    expect(second.hints.map((h) => h.eventId)).toEqual(['m3']);
    expect(scope.isDone()).toBe(true);
  });

  it('falls back to the time when Okta refuses the kept link', async () => {
    const state = await storedAt(new MemoryStateStore(), T1, ['a'], `${ORG}/api/v1/logs?after=expired`);
    FILTER = await filterOf();
    await state.set(
      POSITION_KEY,
      JSON.stringify({ since: T1, seen: ['a'], next: `${ORG}/api/v1/logs?sortOrder=ASCENDING&limit=1000&filter=${encodeURIComponent(FILTER)}&after=expired` }),
    );
    const feed = await feedFor({}, state);
    nock(ORG)
      .get('/api/v1/logs')
      .query((q) => q.after === 'expired')
      .reply(400, { errorCode: 'E0000001', errorSummary: 'Api validation failed: after', errorCauses: [] });
    logsPage({ since: T1, sortOrder: 'ASCENDING', limit: '1000', filter: FILTER }, [
      event('a', T1, 'user.lifecycle.deactivate', [userT('00uA')]),
      event('b', T2, 'user.lifecycle.deactivate', [userT('00uB')]),
    ]);
    const batch = await feed.poll();
    expect(batch.hints.map((h) => h.eventId)).toEqual(['b']);
    expect(batch.requests).toBe(2);
  });

  it('fails the poll and keeps the position when Okta fails, answers 200 with an error, or cuts the body short', async () => {
    const state = await storedAt(new MemoryStateStore(), T0, ['x']);
    const before = await state.get(POSITION_KEY);
    const feed = await feedFor({}, state);

    nock(ORG).get('/api/v1/logs').query(true).times(3).reply(503, { errorCode: 'E0000010', errorSummary: 'Service unavailable' });
    await expect(feed.poll()).rejects.toThrow(/^Okta System Log poll failed: Okta GET \/api\/v1\/logs answered 503/);

    nock(ORG).get('/api/v1/logs').query(true).reply(200, { errorCode: 'E0000009', errorSummary: 'Internal Server Error', errorCauses: [] });
    await expect(feed.poll()).rejects.toThrow(/something other than a list of events \(E0000009 Internal Server Error\)/);

    nock(ORG)
      .get('/api/v1/logs')
      .query(true)
      .reply(200, `[${JSON.stringify(event('t1', T1, 'user.lifecycle.deactivate', [userT('00u1')])).slice(0, 120)}`, { 'content-type': 'application/json' });
    await expect(feed.poll()).rejects.toThrow(SourceReadError);

    nock(ORG).get('/api/v1/logs').query(true).reply(403, { errorCode: 'E0000006', errorSummary: 'You do not have permission to perform the requested action' });
    await expect(feed.poll()).rejects.toThrow(/okta\.logs\.read/);

    expect(await state.get(POSITION_KEY)).toBe(before);
    expect(nock.pendingMocks()).toEqual([]);
  });

  it('waits out a 429 with Retry-After, then reads the page; every request is counted', async () => {
    const state = await storedAt(new MemoryStateStore(), T0);
    const feed = await feedFor({}, state);
    nock(ORG)
      .get('/api/v1/logs')
      .query(true)
      .reply(429, { errorCode: 'E0000047', errorSummary: 'API call exceeded rate limit due to too many requests.' }, { 'retry-after': '1' });
    logsPage({ since: T0, sortOrder: 'ASCENDING', limit: '1000', filter: /.+/ }, [event('r1', T1, 'user.lifecycle.suspend', [userT('00u1')])]);
    const started = Date.now();
    const batch = await feed.poll();
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(batch.hints.map((h) => h.userId)).toEqual(['00u1']);
    expect(batch.requests).toBe(2);
  });

  it('keeps an echoed credential out of the failure', async () => {
    const feed = await feedFor({}, await storedAt(new MemoryStateStore(), T0));
    nock(ORG)
      .get('/api/v1/logs')
      .query(true)
      .times(3)
      .reply(500, { errorCode: 'E0000009', errorSummary: `Internal error for Authorization: SSWS ${TOKEN}`, errorCauses: [] });
    const err = await feed.poll().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(SourceReadError);
    expectNoLeak(TOKEN, err);
  });

  it('gives a hint for a user out of scope (the re-read decides), and skips what cannot concern the scope', async () => {
    const state = await storedAt(new MemoryStateStore(), T0);
    const feed = await feedFor({ scope: { mode: 'groups', groupIds: ['00gIn'] } }, state);
    logsPage({ since: T0, sortOrder: 'ASCENDING', limit: '1000', filter: /.+/ }, [
      event('o1', T1, 'user.lifecycle.suspend', [userT('00uNobody')]),
      event('o2', T1, 'group.user_membership.add', [userT('00u2'), groupT('00gOut')]),
      event('o3', T1, 'group.user_membership.remove', [userT('00u3'), groupT('00gIn')]),
      event('o4', T1, 'group.profile.update', [groupT('00gOut', 'Elsewhere')]),
      event('o5', T1, 'group.profile.update', [groupT('00gIn', 'Sales')]),
      // Malformed (no uuid): skipped, the rest still read.
      { ...event('o6', T1, 'user.lifecycle.suspend', [userT('00u6')]), uuid: undefined },
    ]);
    const batch = await feed.poll();
    expect(batch.hints.map((h) => [h.eventId, h.userId ?? h.fullCycle])).toEqual([
      ['o1', '00uNobody'],
      ['o3', '00u3'],
      ['o5', 'group "Sales" was renamed or changed'],
    ]);
  });

  it('is off when asked, and when a service app lacks okta.logs.read; on when it has it', async () => {
    expect(await sourceFor({ changes: { systemLog: { enabled: false } } }).changeFeed?.()).toBeUndefined();
    const key = { method: 'privateKey', clientId: '0oaservice', privateKey: '{"kty":"RSA"}' };
    expect(await sourceFor({ auth: key }).changeFeed?.()).toBeUndefined();
    const withScope = await sourceFor({ auth: { ...key, scopes: ['okta.users.read', 'okta.groups.read', 'okta.apps.read', 'okta.logs.read'] } }).changeFeed?.();
    expect(withScope?.name).toBe('okta-system-log');
    expect(await sourceFor({ changes: { systemLog: { every: '30s' } } }).changeFeed?.()).toMatchObject({ everyMs: 30_000 });
    expect(() => sourceFor({ changes: { systemLog: { every: '1s' } } })).toThrow(/from 5s to 10m/);
  });
});
