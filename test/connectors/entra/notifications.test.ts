import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { HookReceiver } from '../../../src/connectors/changes.js';
import { entraSourceConfigSchema } from '../../../src/connectors/entra/config.js';
import { SUBSCRIPTIONS_KEY } from '../../../src/connectors/entra/notifications.js';
import { SECRET_KEYS } from '../../../src/net/secrets.js';
import { MemoryStateStore } from '../../../src/store/memory-state.js';
import { capturedLogger, expectNoLeak } from '../../support/leaks.js';
import { CLIENT_STATE, GRAPH, graph, mockLatest, mockRound, sourceOf } from './support.js';

beforeAll(() => nock.disableNetConnect());
afterEach(() => {
  nock.cleanAll();
});
afterAll(() => nock.enableNetConnect());

const DAY = 86_400_000;
const HOOK = 'https://tvsync.contoso.example/hooks/main/entra';
const T0 = Date.parse('2026-03-01T10:00:00Z');
const NOTIFY = { notifications: { enabled: true, notificationUrl: HOOK, clientState: CLIENT_STATE } };
const iso = (ms: number) => new Date(ms).toISOString();

async function receiverOf(changes: Record<string, unknown> = NOTIFY, deps = {}): Promise<HookReceiver> {
  const receiver = await sourceOf({ changes }, deps).source.hookReceiver?.();
  if (!receiver) throw new Error('no receiver');
  return receiver;
}

const post = (body: unknown, query: Record<string, string> = {}) => ({
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  query,
  body: typeof body === 'string' ? body : JSON.stringify(body),
});

const item = (resource: string, clientState: string | null = CLIENT_STATE, changeType = 'updated') => {
  const [kind, id] = resource.split('/');
  return {
    subscriptionId: 'sub-1',
    subscriptionExpirationDateTime: '2026-03-03T10:00:00Z',
    changeType,
    resource,
    resourceData: { '@odata.type': `#Microsoft.Graph.${kind === 'Users' ? 'User' : 'Group'}`, '@odata.id': resource, id, organizationId: 'tid' },
    clientState,
    tenantId: 'tid',
  };
};

describe('Entra change notifications: the hook', () => {
  it('is off by default, and needs a public https notificationUrl and a clientState when on', async () => {
    expect(await sourceOf().source.hookReceiver?.()).toBeUndefined();
    const parse = (notifications: Record<string, unknown>) =>
      entraSourceConfigSchema.parse({
        type: 'entra',
        tenantId: 't',
        clientId: 'c',
        clientSecret: 's',
        scope: { mode: 'groups', groupIds: ['g'] },
        changes: { notifications },
      });
    expect(() => parse({ enabled: true })).toThrow(/notifications need notificationUrl[\s\S]*notifications need clientState/);
    expect(() => parse({ enabled: true, notificationUrl: 'http://tvsync.contoso.example/h', clientState: CLIENT_STATE })).toThrow(/https URLs only/);
    expect(() => parse({ enabled: true, notificationUrl: 'https://10.1.2.3/h', clientState: CLIENT_STATE })).toThrow(/cannot reach 10\.1\.2\.3/);
    expect(() => parse({ enabled: true, notificationUrl: HOOK, clientState: 'short' })).toThrow();
    expect(parse({ enabled: true, notificationUrl: 'http://127.0.0.1:8080/hooks/x/entra', clientState: CLIENT_STATE }).changes.notifications.lifetime).toBe(
      2 * DAY,
    );
    expect(SECRET_KEYS.has('clientState')).toBe(true);
  });

  it('answers the validation handshake with the token as plain text', async () => {
    const receiver = await receiverOf();
    expect(receiver.name).toBe('entra');
    const token = 'Validation: Testing client application reachability for subscription Request-Id: 1a2b';
    expect(await receiver.receive(post('', { validationToken: token }))).toEqual({
      answer: { status: 200, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: token },
      hints: [],
    });
    expect((await receiver.receive({ ...post(''), method: 'GET' })).answer.status).toBe(405);
  });

  it('turns user notifications into hints and drops, and counts, those whose clientState does not match', async () => {
    const { lines, log } = capturedLogger();
    const receiver = await receiverOf(NOTIFY, { log, now: () => T0 });
    const got = await receiver.receive(
      post({
        value: [
          item('Users/u1'),
          item('Users/u2', 'cs-7Qm2xVb9Lk4pZt8X'),
          item('Users/u3', null),
          item('Users/u1', CLIENT_STATE, 'deleted'),
          item('Users/u4', CLIENT_STATE, 'deleted'),
        ],
      }),
    );
    expect(got.answer).toEqual({ status: 202 });
    expect(got.hints).toEqual([
      { userId: 'u1', atMs: T0, what: 'graph notification: user updated' },
      { userId: 'u4', atMs: T0, what: 'graph notification: user deleted' },
    ]);
    expect((receiver as unknown as { dropped: number }).dropped).toBe(2);
    expect(lines.join('\n')).toMatch(/"dropped":2/);
    expectNoLeak(CLIENT_STATE, lines);

    expect(await receiver.receive(post('{"value":[{"changeType"'))).toEqual({ answer: { status: 400 }, hints: [] });
    expect(await receiver.receive(post({ value: 'nope' }))).toEqual({ answer: { status: 400 }, hints: [] });
  });

  it("reads a notified group's member changes from the delta feed's position without moving it", async () => {
    const state = new MemoryStateStore();
    const scope = graph();
    mockLatest(scope, 'U1', 'G1');
    scope.get('/v1.0/groups/g1').query(true).reply(200, { id: 'g1', displayName: 'Sales' });
    const made = sourceOf({ changes: NOTIFY }, { state });
    const feed = await made.source.changeFeed?.();
    const receiver = await made.source.hookReceiver?.();
    // Subscriptions are not the point here: Graph refuses them, and the feed goes on.
    scope.post('/v1.0/subscriptions').reply(403, { error: { code: 'Forbidden', message: 'no' } });
    await (await feed?.poll())?.commit();
    const position = await state.get('entra.feed');

    mockRound(
      scope,
      'groups',
      'G1',
      [{ id: 'g1', displayName: 'Sales', 'members@delta': [{ id: 'u5' }, { id: 'u6', '@removed': { reason: 'deleted' } }] }],
      'G2',
    );
    const got = await receiver?.receive(post({ value: [item('Groups/g1'), item('Groups/g2', 'wrong-client-state-000')] }));
    expect(got?.answer.status).toBe(202);
    expect(got?.hints.map((h) => [h.userId, h.what])).toEqual([
      ['u5', 'groups delta: member added to Sales'],
      ['u6', 'groups delta: member removed from Sales'],
    ]);
    expect(await state.get('entra.feed')).toBe(position);

    // Graph failing: the notification is still taken (202) and the feed's next round finds the members.
    scope.get('/v1.0/groups/delta').query({ $deltatoken: 'G1' }).times(3).reply(503, {});
    expect(await receiver?.receive(post({ value: [item('Groups/g1')] }))).toEqual({ answer: { status: 202 }, hints: [] });
    expect(scope.isDone()).toBe(true);
  });
});

describe('Entra change notifications: subscriptions kept by the feed', () => {
  it('subscribes to users and groups, renews before a third of the lifetime is left, and subscribes again after a 404', async () => {
    const clock = { now: T0 };
    const state = new MemoryStateStore();
    const { lines, log } = capturedLogger();
    const made = sourceOf({ changes: { ...NOTIFY, delta: { enabled: false } } }, { state, log, now: () => clock.now });
    const feed = await made.source.changeFeed?.();
    expect(feed).toBeDefined();
    const scope = graph();
    const created: Record<string, unknown>[] = [];
    scope
      .post('/v1.0/subscriptions', (body: Record<string, unknown>) => {
        created.push(body);
        return true;
      })
      .times(2)
      .reply(201, (_uri, body) => {
        const b = body as Record<string, string>;
        return {
          '@odata.context': `${GRAPH}/v1.0/$metadata#subscriptions/$entity`,
          id: `sub-${b.resource}`,
          resource: b.resource,
          changeType: b.changeType,
          clientState: b.clientState,
          notificationUrl: b.notificationUrl,
          expirationDateTime: b.expirationDateTime,
        };
      });
    const first = await feed?.poll();
    expect(first?.hints).toEqual([]);
    expect(first?.requests).toBe(2);
    expect(created).toEqual(
      ['users', 'groups'].map((resource) => ({
        changeType: 'updated,deleted',
        notificationUrl: HOOK,
        resource,
        expirationDateTime: iso(T0 + 2 * DAY),
        clientState: CLIENT_STATE,
        latestSupportedTlsVersion: 'v1_2',
      })),
    );
    const saved = await state.get(SUBSCRIPTIONS_KEY);
    expect(JSON.parse(saved ?? '{}')).toEqual({
      version: 1,
      notificationUrl: HOOK,
      items: { users: { id: 'sub-users', expiresAt: T0 + 2 * DAY }, groups: { id: 'sub-groups', expiresAt: T0 + 2 * DAY } },
    });
    expectNoLeak(CLIENT_STATE, saved, lines);

    // A day on, more than a third is left: nothing is sent.
    clock.now = T0 + DAY;
    expect((await feed?.poll())?.requests).toBe(0);

    // Less than a third left: renewed (PATCH), for two days from now.
    clock.now = T0 + 1.5 * DAY;
    const renewed: string[] = [];
    scope
      .patch(/\/v1\.0\/subscriptions\/sub-(users|groups)$/, (body: Record<string, string>) => body.expirationDateTime === iso(T0 + 3.5 * DAY))
      .times(2)
      .reply(200, (uri) => {
        renewed.push(uri);
        return { id: uri.split('/').pop(), resource: 'x', expirationDateTime: iso(T0 + 3.5 * DAY) };
      });
    expect((await feed?.poll())?.requests).toBe(2);
    expect(renewed).toEqual(['/v1.0/subscriptions/sub-users', '/v1.0/subscriptions/sub-groups']);
    expect(JSON.parse((await state.get(SUBSCRIPTIONS_KEY)) ?? '{}').items.users.expiresAt).toBe(T0 + 3.5 * DAY);

    // Graph forgot the users subscription: the renewal's 404 leads to a new one.
    clock.now = T0 + 3 * DAY;
    scope
      .patch('/v1.0/subscriptions/sub-users')
      .reply(404, { error: { code: 'ResourceNotFound', message: 'The object was not found.' } })
      .patch('/v1.0/subscriptions/sub-groups')
      .reply(200, { id: 'sub-groups', expirationDateTime: iso(T0 + 5 * DAY) })
      .post('/v1.0/subscriptions', (body: Record<string, string>) => body.resource === 'users')
      .reply(201, { id: 'sub-users-2', resource: 'users', expirationDateTime: iso(T0 + 5 * DAY) });
    await feed?.poll();
    expect(JSON.parse((await state.get(SUBSCRIPTIONS_KEY)) ?? '{}').items).toEqual({
      users: { id: 'sub-users-2', expiresAt: T0 + 5 * DAY },
      groups: { id: 'sub-groups', expiresAt: T0 + 5 * DAY },
    });
    expect(scope.isDone()).toBe(true);
    expectNoLeak(CLIENT_STATE, lines, await state.get(SUBSCRIPTIONS_KEY));
  });

  it('a refused subscription neither fails the delta round nor is retried at every poll', async () => {
    const clock = { now: T0 };
    const { lines, log } = capturedLogger();
    const made = sourceOf({ changes: NOTIFY }, { log, now: () => clock.now });
    const feed = await made.source.changeFeed?.();
    const scope = graph();
    mockLatest(scope, 'U1', 'G1');
    scope.get('/v1.0/groups/g1').query(true).reply(200, { id: 'g1', displayName: 'Sales' });
    scope.post('/v1.0/subscriptions').reply(400, {
      error: { code: 'ValidationError', message: `Subscription validation request failed. Notification endpoint must respond with 200 OK (${CLIENT_STATE}).` },
    });
    await (await feed?.poll())?.commit();
    expect(lines.join('\n')).toMatch(/ValidationError.*subscriptions could not be kept up/);
    expectNoLeak(CLIENT_STATE, lines);

    clock.now = T0 + 60_000;
    mockRound(scope, 'users', 'U1', [], 'U2');
    mockRound(scope, 'groups', 'G1', [], 'G2');
    expect((await feed?.poll())?.requests).toBe(2);

    clock.now = T0 + 6 * 60_000;
    scope
      .post('/v1.0/subscriptions')
      .times(2)
      .reply(201, { id: 'sub-x', expirationDateTime: iso(clock.now + 2 * DAY) });
    mockRound(scope, 'users', 'U1', [], 'U2');
    mockRound(scope, 'groups', 'G1', [], 'G2');
    expect((await feed?.poll())?.requests).toBe(4);
    expect(scope.isDone()).toBe(true);
  });

  it('removes its subscriptions once notifications are turned off', async () => {
    const state = new MemoryStateStore();
    await state.set(
      SUBSCRIPTIONS_KEY,
      JSON.stringify({ version: 1, notificationUrl: HOOK, items: { users: { id: 's1', expiresAt: T0 }, groups: { id: 's2', expiresAt: T0 } } }),
    );
    const scope = graph();
    scope
      .delete('/v1.0/subscriptions/s1')
      .reply(204)
      .delete('/v1.0/subscriptions/s2')
      .reply(404, { error: { code: 'ResourceNotFound', message: 'gone' } });
    mockLatest(scope, 'U1', 'G1');
    scope.get('/v1.0/groups/g1').query(true).reply(200, { id: 'g1', displayName: 'Sales' });
    const feed = await sourceOf({}, { state }).source.changeFeed?.();
    await feed?.poll();
    expect(await state.get(SUBSCRIPTIONS_KEY)).toBeUndefined();
    expect(scope.isDone()).toBe(true);
  });
});
