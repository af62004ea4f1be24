import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ChangeFeed } from '../../../src/connectors/changes.js';
import { insightsBaseUrl } from '../../../src/connectors/jumpcloud/client.js';
import { jumpcloudSourceConfigSchema } from '../../../src/connectors/jumpcloud/config.js';
import { createJumpcloudSource } from '../../../src/connectors/jumpcloud/source.js';
import { SYSTEM_USER_FIELDS } from '../../../src/connectors/jumpcloud/wire.js';
import { SourceReadError } from '../../../src/connectors/source.js';
import { MemoryStateStore } from '../../../src/store/memory-state.js';
import { capturedLogger, echoedForms, expectNoLeak } from '../../support/leaks.js';

/** The JumpCloud fast lane on the wire: the Directory Insights feed and the one-user read. */

const CONSOLE = 'https://console.jumpcloud.com';
const INSIGHTS = 'https://api.jumpcloud.com';
const EVENTS = '/insights/directory/v1/events';
const KEY = 'jc-fastlane-key-7b21e0c95d3f4a68';
const APP = '6a0000000000000000000a01';
const OTHER_APP = '6a0000000000000000000a99';
const FAST = { attempts: 3, baseMs: 1, capMs: 5 };
const T0 = Date.parse('2026-11-30T10:00:00.000Z');

const uid = (n: number) => `5f${n.toString(16).padStart(22, '0')}`;
const gid = (n: number) => `64${n.toString(16).padStart(22, '0')}`;
const eid = (n: number) => `e0${n.toString(16).padStart(22, '0')}`;
const iso = (ms: number) => new Date(ms).toISOString();

beforeAll(() => nock.disableNetConnect());
afterEach(() => nock.cleanAll());
afterAll(() => nock.enableNetConnect());

function setup(over: Record<string, unknown> = {}) {
  const clock = { now: T0 };
  const state = new MemoryStateStore();
  const { lines, log } = capturedLogger();
  const config = jumpcloudSourceConfigSchema.parse({ type: 'jumpcloud', apiKey: KEY, scope: { mode: 'application', applicationId: APP }, ...over });
  const source = createJumpcloudSource(config, { state, log, backoff: FAST, now: () => clock.now });
  return { clock, state, lines, source };
}
async function feedOf(source: ReturnType<typeof setup>['source']): Promise<ChangeFeed> {
  const feed = await source.changeFeed?.();
  if (!feed) throw new Error('no feed');
  return feed;
}
/** A feed whose first poll has been committed at T0. */
async function started(over: Record<string, unknown> = {}) {
  const s = setup(over);
  const feed = await feedOf(s.source);
  await (await feed.poll()).commit();
  return { ...s, feed };
}

/** A directory event as Directory Insights returns it. */
function event(n: number, atMs: number, event_type: string, extra: Record<string, unknown> = {}) {
  return {
    id: eid(n),
    event_type,
    timestamp: iso(atMs),
    service: 'directory',
    organization: '641b3db57090821c0b2f8183',
    success: true,
    initiated_by: { id: '61e536ebdbbe784cb2e55fb5', type: 'admin', email: 'admin@corp.example' },
    client_ip: '192.0.2.1',
    ...extra,
  };
}
const userEvent = (n: number, atMs: number, type: string, userId: string, changes: unknown[] = []) =>
  event(n, atMs, type, { resource: { id: userId, type: 'user', username: `user${n}` }, changes });
const end = (type: string, object_id: string, name = 'x') => ({ type, object_id, name });
const assoc = (n: number, atMs: number, op: 'add' | 'remove', from: ReturnType<typeof end>, to: ReturnType<typeof end>) =>
  event(n, atMs, 'association_change', { association: { op, action_source: 'manual', connection: { from, to }, attributes: null } });

const di = () => nock(INSIGHTS, { reqheaders: { 'x-api-key': KEY, 'content-type': /application\/json/ } });
const pageHeaders = (count: number, limit = 1000, after?: unknown[]) => ({
  'X-Result-Count': String(count),
  'X-Limit': String(limit),
  ...(after ? { 'X-Search_After': JSON.stringify(after) } : {}),
});

describe('jumpcloud changes config', () => {
  it('polls Directory Insights every 20 s with a 30 s overlap by default, on the region API host', () => {
    const config = jumpcloudSourceConfigSchema.parse({ type: 'jumpcloud', apiKey: 'k', scope: { mode: 'groups', groupIds: ['a'] } });
    expect(config.changes).toEqual({ insights: { enabled: true, every: 20_000, overlap: 30_000 } });
    expect(insightsBaseUrl(config)).toBe('https://api.jumpcloud.com');
    expect(insightsBaseUrl({ baseUrl: 'https://console.eu.jumpcloud.com/api' })).toBe('https://api.eu.jumpcloud.com');
    expect(insightsBaseUrl({ baseUrl: 'http://127.0.0.1:4010/api' })).toBe('http://127.0.0.1:4010');
    expect(insightsBaseUrl({ baseUrl: 'https://console.jumpcloud.com/api', insightsBaseUrl: 'https://proxy.corp.example/di/' })).toBe(
      'https://proxy.corp.example/di',
    );
    expect(jumpcloudSourceConfigSchema.safeParse({ ...config, changes: { insights: { every: '1s' } } }).success).toBe(false);
  });

  it('gives no feed when switched off', async () => {
    const { source } = setup({ changes: { insights: { enabled: false } } });
    expect(await source.changeFeed?.()).toBeUndefined();
  });
});

describe('jumpcloud Directory Insights feed', () => {
  it('the first poll only sets the position, without a request', async () => {
    const { source, state } = setup();
    const feed = await feedOf(source);
    expect(feed).toMatchObject({ name: 'jumpcloud-insights', everyMs: 20_000 });
    const first = await feed.poll();
    expect(first).toMatchObject({ hints: [], requests: 0 });
    expect(await state.get('insights-position')).toBeUndefined();
    await first.commit();
    expect(JSON.parse((await state.get('insights-position')) ?? '{}')).toMatchObject({ sinceMs: T0, atMs: T0 });
  });

  it('turns directory events into user hints and full-cycle hints, and ignores the rest', async () => {
    const { feed, clock } = await started();
    clock.now = T0 + 60_000;
    const t = T0 + 1000;
    const events = [
      userEvent(1, t, 'user_update', uid(1), [{ field: 'suspended', from: false, to: true }]),
      userEvent(2, t + 1, 'user_create', uid(2)),
      userEvent(3, t + 2, 'user_delete', uid(3)),
      assoc(4, t + 3, 'add', end('user_group', gid(1), 'Sales'), end('user', uid(4))),
      assoc(5, t + 4, 'remove', end('USER_GROUP', gid(2), 'Support'), end('application', APP, 'TeamViewer')),
      assoc(6, t + 5, 'add', end('user_group', gid(3)), end('application', OTHER_APP)),
      assoc(7, t + 6, 'add', end('system', '6447f8a7caa17d71c56b2dca'), end('user', uid(7))),
      assoc(8, t + 7, 'add', end('user', uid(8)), end('application', APP)),
      event(9, t + 8, 'group_update', {
        resource: { id: gid(1), type: 'user_group', name: 'Sales EU' },
        changes: [{ field: 'name', from: 'Sales', to: 'Sales EU' }],
      }),
      event(10, t + 9, 'group_update', { resource: { id: gid(1), type: 'user_group' }, changes: [{ field: 'description', from: '', to: 'x' }] }),
      event(11, t + 10, 'user_login_attempt', { resource: { id: uid(11), type: 'user' } }),
      event(12, t + 11, 'user_update', { resource: { id: uid(12), type: 'user' }, success: false }),
      event(13, t + 12, 'admin_login_attempt'),
      // Group inside group: only where nested groups count.
      assoc(14, t + 13, 'add', end('user_group', gid(1)), end('user_group', gid(5))),
      // An event whose shape is not understood may be an unassignment.
      event(15, t + 14, 'association_change', { association: { op: 'remove', connection: { from: { type: 'user_group' } } } }),
      // The same event twice in one answer.
      userEvent(1, t, 'user_update', uid(1)),
    ];
    const scope = di()
      .post(EVENTS, { service: ['directory'], start_time: iso(T0), limit: 1000, sort: 'ASC' })
      .reply(200, events, pageHeaders(events.length));
    const batch = await feed.poll();
    expect(scope.isDone()).toBe(true);
    expect(batch.requests).toBe(1);
    const summary = batch.hints.map((h) => [h.what, h.userId ?? h.fullCycle, h.eventId, h.atMs]);
    expect(summary).toEqual([
      ['user_update', uid(1), eid(1), t],
      ['user_create', uid(2), eid(2), t + 1],
      ['user_delete', uid(3), eid(3), t + 2],
      ['association_change', uid(4), eid(4), t + 3],
      ['association_change', `user group Support (${gid(2)}) was unbound from the application`, eid(5), t + 4],
      ['association_change', uid(8), eid(8), t + 7],
      ['group_update', `user group Sales EU (${gid(1)}) was changed`, eid(9), t + 8],
      ['association_change', expect.stringMatching(/^a association_change event tvsync could not read/), eid(15), t + 14],
    ]);
  });

  it('counts a group put into a bound group only where nested groups count, and only listed groups in groups mode', async () => {
    const nested = await started({ nestedGroups: true });
    nested.clock.now = T0 + 60_000;
    di()
      .post(EVENTS)
      .reply(200, [assoc(1, T0 + 5, 'add', end('user_group', gid(1)), end('user_group', gid(5)))], pageHeaders(1));
    expect((await nested.feed.poll()).hints.map((h) => h.fullCycle)).toEqual([`user group ${gid(1)} was put into user group ${gid(5)}`]);

    const groups = await started({ scope: { mode: 'groups', groupIds: [gid(1)] } });
    groups.clock.now = T0 + 60_000;
    di()
      .post(EVENTS)
      .reply(
        200,
        [
          event(1, T0 + 5, 'group_delete', { resource: { id: gid(1), type: 'user_group', name: 'Sales' } }),
          event(2, T0 + 6, 'group_delete', { resource: { id: gid(2), type: 'user_group', name: 'Other' } }),
          assoc(3, T0 + 7, 'add', end('user_group', gid(2)), end('application', APP)),
        ],
        pageHeaders(3),
      );
    expect((await groups.feed.poll()).hints.map((h) => h.fullCycle)).toEqual([`user group Sales (${gid(1)}) was deleted`]);
  });

  it('follows X-Search_After through the pages of one poll', async () => {
    const { feed, clock } = await started();
    clock.now = T0 + 60_000;
    const a = [userEvent(1, T0 + 1, 'user_update', uid(1)), userEvent(2, T0 + 2, 'user_update', uid(2))];
    const b = [userEvent(3, T0 + 3, 'user_update', uid(3))];
    const cursor = [String(T0 + 2), eid(2)];
    di()
      .post(EVENTS, (body) => body.search_after === undefined)
      .reply(200, a, pageHeaders(2, 2, cursor))
      .post(EVENTS, (body) => JSON.stringify(body.search_after) === JSON.stringify(cursor) && body.start_time === iso(T0))
      .reply(200, b, pageHeaders(1, 2, [String(T0 + 3), eid(3)]));
    const batch = await feed.poll();
    expect(batch.requests).toBe(2);
    expect(batch.hints.map((h) => h.userId)).toEqual([uid(1), uid(2), uid(3)]);
    expect(nock.isDone()).toBe(true);
  });

  it('asks again from 30 s before the last event and drops the ids it has seen, so a late-indexed event is not lost', async () => {
    const { feed, clock, state } = await started();
    clock.now = T0 + 120_000;
    const last = T0 + 100_000;
    const first = [userEvent(1, last - 10_000, 'user_update', uid(1)), userEvent(2, last, 'user_update', uid(2))];
    di().post(EVENTS).reply(200, first, pageHeaders(2));
    const batch = await feed.poll();
    expect(batch.hints.map((h) => h.userId)).toEqual([uid(1), uid(2)]);
    await batch.commit();
    expect(JSON.parse((await state.get('insights-position')) ?? '{}')).toMatchObject({ atMs: last });

    // Indexed only now, though it happened before the last event seen.
    const late = userEvent(3, last - 5000, 'user_update', uid(3));
    di()
      .post(EVENTS, (body) => body.start_time === iso(last - 30_000))
      .reply(200, [first[0], late, first[1]], pageHeaders(3));
    const next = await feed.poll();
    expect(next.hints.map((h) => [h.userId, h.eventId])).toEqual([[uid(3), eid(3)]]);
    await next.commit();

    di()
      .post(EVENTS, (body) => body.start_time === iso(last - 30_000))
      .reply(200, [first[0], late, first[1]], pageHeaders(3));
    expect((await feed.poll()).hints).toEqual([]);
  });

  it('keeps the position when a poll fails, and when its batch is not committed', async () => {
    const { feed, clock, state } = await started();
    clock.now = T0 + 60_000;
    const before = await state.get('insights-position');
    di().post(EVENTS).times(3).reply(503, { message: 'Service Unavailable' });
    await expect(feed.poll()).rejects.toThrow(SourceReadError);
    expect(await state.get('insights-position')).toBe(before);

    di()
      .post(EVENTS, (body) => body.start_time === iso(T0))
      .reply(200, [userEvent(1, T0 + 5, 'user_update', uid(1))], pageHeaders(1));
    const batch = await feed.poll();
    expect(batch.hints).toHaveLength(1);
    expect(await state.get('insights-position')).toBe(before);
    // Not committed: the same event comes again.
    di()
      .post(EVENTS, (body) => body.start_time === iso(T0))
      .reply(200, [userEvent(1, T0 + 5, 'user_update', uid(1))], pageHeaders(1));
    expect((await feed.poll()).hints).toHaveLength(1);
  });

  it('says what to do when Directory Insights is refused (HTTP 403)', async () => {
    const { feed, clock } = await started();
    clock.now = T0 + 60_000;
    di().post(EVENTS).reply(403, { message: 'Forbidden' });
    await expect(feed.poll()).rejects.toThrow(/may not read Directory Insights.*changes\.insights\.enabled: false/);
  });

  it('waits out a 429 with Retry-After and goes on', async () => {
    const { feed, clock } = await started();
    clock.now = T0 + 60_000;
    di()
      .post(EVENTS)
      .reply(429, { message: 'Too Many Requests' }, { 'Retry-After': '0' })
      .post(EVENTS)
      .reply(200, [userEvent(1, T0 + 5, 'user_update', uid(1))], pageHeaders(1));
    const batch = await feed.poll();
    expect(batch.hints.map((h) => h.userId)).toEqual([uid(1)]);
  });

  it('fails on a 200 carrying an error, a truncated page, an unplaceable event or a broken cursor, never echoing the key', async () => {
    const { feed, clock, state, lines } = await started();
    clock.now = T0 + 60_000;
    const before = await state.get('insights-position');
    const echo = `invalid key ${echoedForms(KEY).join(' ')}`;

    di().post(EVENTS).reply(200, { error: echo });
    const err = await feed.poll().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourceReadError);
    expect((err as Error).message).toMatch(/answered 200 without events \(.*invalid key/);
    expectNoLeak(KEY, err, (err as SourceReadError).cause, lines.join('\n'));

    di()
      .post(EVENTS)
      .reply(200, [userEvent(1, T0 + 5, 'user_update', uid(1))], pageHeaders(2));
    await expect(feed.poll()).rejects.toThrow(/announced 2 events and sent 1/);

    di()
      .post(EVENTS)
      .reply(200, [{ event_type: 'user_update', timestamp: iso(T0 + 5) }], pageHeaders(1));
    await expect(feed.poll()).rejects.toThrow(/cannot place/);

    di()
      .post(EVENTS)
      .reply(200, [userEvent(1, T0 + 5, 'user_update', uid(1))], { ...pageHeaders(1, 1), 'X-Search_After': 'not json' });
    await expect(feed.poll()).rejects.toThrow(/paging cursor/);

    di().post(EVENTS).times(3).reply(500, { message: echo });
    const failed = await feed.poll().catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(SourceReadError);
    expectNoLeak(KEY, failed, (failed as SourceReadError).cause, lines.join('\n'));
    expect(await state.get('insights-position')).toBe(before);
  });
});

// ---------------------------------------------------------------------------------------------

/** A v1 systemuser as JumpCloud returns it. */
function systemUser(n: number, over: Record<string, unknown> = {}) {
  return {
    _id: uid(n),
    username: `user${n}`,
    email: `user${n}@corp.example`,
    firstname: `First${n}`,
    lastname: `Last${n}`,
    displayname: `First${n} Last${n}`,
    activated: true,
    suspended: false,
    password_expired: false,
    state: 'ACTIVATED',
    ...over,
  };
}
type Node = { id: string; type: string };
const edge = (from: Node, to: Node) => ({ from: { ...from, attributes: null }, to: { ...to, attributes: null }, attributes: null });
/** GraphObjectWithPaths reached from `start` along each chain. */
const reached = (start: Node, target: Node, ...chains: Node[][]) => ({
  ...target,
  compiledAttributes: {},
  paths: chains.map((chain) => [start, ...chain].slice(0, -1).map((from, i) => edge(from, chain[i] as Node))),
});
const userNode = (n: number) => ({ id: uid(n), type: 'user' });
const groupNode = (n: number) => ({ id: gid(n), type: 'user_group' });
const appNode = { id: APP, type: 'application' };

const jc = () => nock(CONSOLE, { reqheaders: { 'x-api-key': KEY } });
const all = { limit: '100', skip: '0' };
const v2 = (total: number) => ({ 'x-total-count': String(total) });

function readUserSetup(over: Record<string, unknown> = {}) {
  return setup(over).source;
}

describe('jumpcloud readUser', () => {
  it('is in scope as a direct member of a group bound to the application, with that group as the full read names it', async () => {
    const source = readUserSetup();
    jc()
      .get(`/api/systemusers/${uid(1)}`)
      .query({ fields: SYSTEM_USER_FIELDS })
      .reply(200, systemUser(1))
      .get(`/api/v2/users/${uid(1)}/memberof`)
      .query(all)
      .reply(200, [reached(userNode(1), groupNode(1), [groupNode(1)]), reached(userNode(1), groupNode(9), [groupNode(9)])], v2(2))
      .get(`/api/v2/applications/${APP}/usergroups`)
      .query(all)
      .reply(200, [reached(appNode, groupNode(1), [groupNode(1)]), reached(appNode, groupNode(2), [groupNode(2)])], v2(2))
      .get(`/api/v2/usergroups/${gid(1)}`)
      .reply(200, { id: gid(1), name: 'TeamViewer Users', type: 'user_group' });
    expect(await source.readUser?.(uid(1))).toEqual({
      status: 'in-scope',
      user: { id: uid(1), email: 'user1@corp.example', displayName: 'First1 Last1', givenName: 'First1', familyName: 'Last1', active: true },
      groups: [{ id: gid(1), name: 'TeamViewer Users' }],
      groupsComplete: true,
      why: `a direct member of user group "TeamViewer Users", bound to application ${APP}`,
    });
    expect(nock.isDone()).toBe(true);
  });

  it('counts a membership through a nested group only with nestedGroups', async () => {
    const nestedPath = [groupNode(5), groupNode(1)];
    const replies = () =>
      jc()
        .get(`/api/systemusers/${uid(1)}`)
        .query(true)
        .reply(200, systemUser(1))
        .get(`/api/v2/users/${uid(1)}/memberof`)
        .query(all)
        .reply(200, [reached(userNode(1), groupNode(5), [groupNode(5)]), reached(userNode(1), groupNode(1), nestedPath)], v2(2))
        .get(`/api/v2/applications/${APP}/usergroups`)
        .query(all)
        .reply(200, [reached(appNode, groupNode(1), [groupNode(1)]), reached(appNode, groupNode(5), [groupNode(1), groupNode(5)])], v2(2));
    replies();
    expect(await readUserSetup().readUser?.(uid(1))).toMatchObject({
      status: 'out-of-scope',
      user: { id: uid(1) },
      why: `not a direct member of a user group bound to application ${APP}`,
    });
    replies()
      .get(`/api/v2/usergroups/${gid(1)}`)
      .reply(200, { id: gid(1), name: 'Engineering' });
    expect(await readUserSetup({ nestedGroups: true }).readUser?.(uid(1))).toMatchObject({
      status: 'in-scope',
      groups: [{ id: gid(1), name: 'Engineering' }],
      why: expect.stringMatching(/through nested groups/),
    });
  });

  it('takes a user bound to the application directly only with includeDirectUserBindings', async () => {
    const base = () =>
      jc()
        .get(`/api/systemusers/${uid(2)}`)
        .query(true)
        .reply(200, systemUser(2))
        .get(`/api/v2/users/${uid(2)}/memberof`)
        .query(all)
        .reply(200, [], v2(0))
        .get(`/api/v2/applications/${APP}/usergroups`)
        .query(all)
        .reply(200, [reached(appNode, groupNode(1), [groupNode(1)])], v2(1));
    base();
    expect(await readUserSetup().readUser?.(uid(2))).toMatchObject({
      status: 'out-of-scope',
      why: `not a direct member of a user group bound to application ${APP}`,
    });
    expect(nock.isDone()).toBe(true);

    base()
      .get(`/api/v2/users/${uid(2)}/applications`)
      .query(all)
      .reply(200, [reached(userNode(2), appNode, [appNode])], v2(1));
    const direct = readUserSetup({ scope: { mode: 'application', applicationId: APP, includeDirectUserBindings: true } });
    expect(await direct.readUser?.(uid(2))).toMatchObject({
      status: 'in-scope',
      groups: [],
      groupsComplete: true,
      why: expect.stringMatching(/bound directly/),
    });

    // Reaching the application only through an unbound group's path is no direct binding.
    base()
      .get(`/api/v2/users/${uid(2)}/applications`)
      .query(all)
      .reply(200, [reached(userNode(2), appNode, [groupNode(7), appNode])], v2(1));
    expect(await direct.readUser?.(uid(2))).toMatchObject({ status: 'out-of-scope', why: expect.stringMatching(/nor bound to it directly/) });
  });

  it('maps a suspended user as the full read does: in scope and inactive', async () => {
    jc()
      .get(`/api/systemusers/${uid(3)}`)
      .query(true)
      .reply(200, systemUser(3, { suspended: true, state: 'SUSPENDED' }))
      .get(`/api/v2/users/${uid(3)}/memberof`)
      .query(all)
      .reply(200, [reached(userNode(3), groupNode(1), [groupNode(1)])], v2(1))
      .get(`/api/v2/applications/${APP}/usergroups`)
      .query(all)
      .reply(200, [reached(appNode, groupNode(1), [groupNode(1)])], v2(1))
      .get(`/api/v2/usergroups/${gid(1)}`)
      .reply(200, { id: gid(1), name: 'TeamViewer Users' });
    expect(await readUserSetup().readUser?.(uid(3))).toMatchObject({
      status: 'in-scope',
      user: { active: false },
      why: expect.stringMatching(/inactive in JumpCloud/),
    });
  });

  it('is not found on a 404 or an address nobody has, and finds one exact address', async () => {
    jc()
      .get(`/api/systemusers/${uid(4)}`)
      .query(true)
      .reply(404, { message: 'Not Found' });
    expect(await readUserSetup().readUser?.(uid(4))).toEqual({ status: 'not-found', why: `JumpCloud has no user ${uid(4)} (HTTP 404)` });

    jc()
      .get('/api/systemusers')
      .query({ limit: '2', skip: '0', sort: '_id', fields: SYSTEM_USER_FIELDS, filter: 'email:$eq:gone@corp.example' })
      .reply(200, { totalCount: 0, results: [] });
    expect(await readUserSetup().readUser?.('gone@corp.example')).toMatchObject({ status: 'not-found' });

    jc()
      .get('/api/systemusers')
      .query((q) => q.filter === 'email:$eq:User5@Corp.example')
      .reply(200, { totalCount: 1, results: [systemUser(5)] })
      .get(`/api/v2/users/${uid(5)}/memberof`)
      .query(all)
      .reply(200, [], v2(0))
      .get(`/api/v2/applications/${APP}/usergroups`)
      .query(all)
      .reply(200, [], v2(0));
    expect(await readUserSetup().readUser?.('User5@Corp.example')).toMatchObject({ status: 'out-of-scope', user: { id: uid(5) } });
  });

  it('asks again in lower case before saying an address is unknown', async () => {
    jc()
      .get('/api/systemusers')
      .query((q) => q.filter === 'email:$eq:Mixed.Case@Corp.example')
      .reply(200, { totalCount: 0, results: [] })
      .get('/api/systemusers')
      .query((q) => q.filter === 'email:$eq:mixed.case@corp.example')
      .reply(200, { totalCount: 1, results: [systemUser(6, { email: 'mixed.case@corp.example' })] })
      .get(`/api/v2/users/${uid(6)}/memberof`)
      .query(all)
      .reply(200, [], v2(0))
      .get(`/api/v2/applications/${APP}/usergroups`)
      .query(all)
      .reply(200, [], v2(0));
    expect(await readUserSetup().readUser?.('Mixed.Case@Corp.example')).toMatchObject({ status: 'out-of-scope', user: { id: uid(6) } });
    expect(nock.isDone()).toBe(true);
  });

  it('does not take an address search it cannot trust', async () => {
    jc()
      .get('/api/systemusers')
      .query(true)
      .reply(200, { totalCount: 2, results: [systemUser(5), systemUser(6, { email: 'user5@corp.example' })] });
    await expect(readUserSetup().readUser?.('user5@corp.example')).rejects.toThrow(/2 users with that address/);
    // A filter that was ignored lists everybody.
    jc()
      .get('/api/systemusers')
      .query(true)
      .reply(200, { totalCount: 300, results: [systemUser(1), systemUser(2)] });
    await expect(readUserSetup().readUser?.('user5@corp.example')).rejects.toThrow(SourceReadError);
    jc().get('/api/systemusers').query(true).reply(200, { totalCount: 1, results: [] });
    await expect(readUserSetup().readUser?.('user5@corp.example')).rejects.toThrow(/announced 1/);
  });

  it('reads groups mode: a member of a listed group', async () => {
    const groups = { scope: { mode: 'groups', groupIds: [gid(1), gid(2)] } };
    jc()
      .get(`/api/systemusers/${uid(1)}`)
      .query(true)
      .reply(200, systemUser(1))
      .get(`/api/v2/users/${uid(1)}/memberof`)
      .query(all)
      .reply(200, [reached(userNode(1), groupNode(2), [groupNode(2)]), reached(userNode(1), groupNode(3), [groupNode(3)])], v2(2))
      .get(`/api/v2/usergroups/${gid(2)}`)
      .reply(200, { id: gid(2), name: 'Support' });
    expect(await readUserSetup(groups).readUser?.(uid(1))).toMatchObject({ status: 'in-scope', groups: [{ id: gid(2), name: 'Support' }] });

    jc()
      .get(`/api/systemusers/${uid(1)}`)
      .query(true)
      .reply(200, systemUser(1))
      .get(`/api/v2/users/${uid(1)}/memberof`)
      .query(all)
      .reply(200, [reached(userNode(1), groupNode(3), [groupNode(3)])], v2(1));
    expect(await readUserSetup(groups).readUser?.(uid(1))).toMatchObject({ status: 'out-of-scope', why: expect.stringMatching(/listed user groups/) });
  });

  it('throws instead of answering on 5xx, a malformed record, a short page or a group gone meanwhile, never echoing the key', async () => {
    const { source, lines } = setup();
    const echo = `bad key ${echoedForms(KEY).join(' ')}; headers: {"x-api-key":"${KEY}"}`;
    jc()
      .get(`/api/systemusers/${uid(1)}`)
      .query(true)
      .times(3)
      .reply(500, { message: echo });
    const err = await source.readUser?.(uid(1)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourceReadError);
    expect((err as Error).message).toMatch(/HTTP 500/);
    expectNoLeak(KEY, err, (err as SourceReadError).cause, lines.join('\n'));

    jc()
      .get(`/api/systemusers/${uid(1)}`)
      .query(true)
      .reply(200, { error: 'internal' });
    await expect(source.readUser?.(uid(1))).rejects.toThrow(/cannot read/);

    jc()
      .get(`/api/systemusers/${uid(1)}`)
      .query(true)
      .reply(200, systemUser(1))
      .get(`/api/v2/users/${uid(1)}/memberof`)
      .query(all)
      .reply(200, [reached(userNode(1), groupNode(1), [groupNode(1)])], v2(3));
    await expect(source.readUser?.(uid(1))).rejects.toThrow(/announced 3/);

    jc()
      .get(`/api/systemusers/${uid(1)}`)
      .query(true)
      .reply(200, systemUser(1))
      .get(`/api/v2/users/${uid(1)}/memberof`)
      .query(all)
      .reply(200, [reached(userNode(1), groupNode(1), [groupNode(1)])], v2(1))
      .get(`/api/v2/applications/${APP}/usergroups`)
      .query(all)
      .reply(200, [reached(appNode, groupNode(1), [groupNode(1)])], v2(1))
      .get(`/api/v2/usergroups/${gid(1)}`)
      .reply(404, { message: 'Not Found' });
    await expect(source.readUser?.(uid(1))).rejects.toThrow(/deleted while the user was read/);
  });
});
