import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ChangeFeed } from '../../../src/connectors/changes.js';
import { FEED_KEY } from '../../../src/connectors/entra/feed.js';
import { SNAPSHOT_KEY } from '../../../src/connectors/entra/snapshot.js';
import { SourceReadError } from '../../../src/connectors/source.js';
import { MemoryStateStore } from '../../../src/store/memory-state.js';
import { expectNoLeak } from '../../support/leaks.js';
import { GRAPH, SECRET, assignment, graph, groupLink, mockLatest, mockRound, page, sourceOf, user, userLink } from './support.js';

beforeAll(() => nock.disableNetConnect());
afterEach(() => {
  nock.cleanAll();
});
afterAll(() => nock.enableNetConnect());

const USER = '#microsoft.graph.user';
const GROUP = '#microsoft.graph.group';

/** A groups-mode feed (scope: g1 "Sales") whose first poll has set its position at U1/G1. */
async function startedFeed(overrides: Record<string, unknown> = {}, state = new MemoryStateStore()): Promise<{ feed: ChangeFeed; state: MemoryStateStore }> {
  const scope = graph();
  mockLatest(scope, 'U1', 'G1');
  scope.get('/v1.0/groups/g1').query({ $select: 'id,displayName' }).reply(200, { id: 'g1', displayName: 'Sales' });
  const { source } = sourceOf(overrides, { state });
  const feed = await source.changeFeed?.();
  if (!feed) throw new Error('no feed');
  const batch = await feed.poll();
  expect(batch.hints).toEqual([]);
  await batch.commit();
  expect(scope.isDone()).toBe(true);
  return { feed, state };
}

describe('Entra delta feed', () => {
  it('is on by default every 20 s; its first poll only sets the position to now, in its own state, at commit', async () => {
    const state = new MemoryStateStore();
    await state.set(SNAPSHOT_KEY, 'the cycle snapshot');
    const scope = graph();
    mockLatest(scope, 'U1', 'G1');
    scope.get('/v1.0/groups/g1').query(true).reply(200, { id: 'g1', displayName: 'Sales' });
    const { source } = sourceOf({}, { state });
    const feed = await source.changeFeed?.();
    expect(feed).toMatchObject({ name: 'entra-delta', everyMs: 20_000 });
    const batch = await feed?.poll();
    expect(batch?.hints).toEqual([]);
    expect(batch?.requests).toBe(3);
    expect(await state.get(FEED_KEY)).toBeUndefined();
    await batch?.commit();
    expect(JSON.parse((await state.get(FEED_KEY)) ?? '{}')).toMatchObject({ usersLink: userLink('U1'), groupsLink: groupLink('G1'), names: { g1: 'Sales' } });
    expect(await state.get(SNAPSHOT_KEY)).toBe('the cycle snapshot');
    expect(scope.isDone()).toBe(true);

    const off = sourceOf({ changes: { delta: { enabled: false } } }).source;
    expect(await off.changeFeed?.()).toBeUndefined();
  });

  it('hints each changed or removed user once, following @odata.nextLink within the round', async () => {
    const { feed, state } = await startedFeed();
    const scope = graph().matchHeader('prefer', 'odata.maxpagesize=999');
    scope
      .get('/v1.0/users/delta')
      .query({ $deltatoken: 'U1' })
      .reply(200, page([user('u1'), { id: 'u2', '@removed': { reason: 'changed' } }], { next: `${GRAPH}/v1.0/users/delta?$skiptoken=P2` }))
      .get('/v1.0/users/delta')
      .query({ $skiptoken: 'P2' })
      .reply(200, page([user('u1', { accountEnabled: false })], { delta: userLink('U2') }));
    mockRound(scope, 'groups', 'G1', [], 'G2');
    const batch = await feed.poll();
    expect(batch.hints).toEqual([
      { userId: 'u1', atMs: expect.any(Number), what: 'users delta' },
      { userId: 'u2', atMs: expect.any(Number), what: 'users delta: removed' },
    ]);
    expect(batch.requests).toBe(3);
    expect(JSON.parse((await state.get(FEED_KEY)) ?? '{}').usersLink).toBe(userLink('U1'));
    await batch.commit();
    expect(JSON.parse((await state.get(FEED_KEY)) ?? '{}')).toMatchObject({ usersLink: userLink('U2'), groupsLink: groupLink('G2') });
    expect(scope.isDone()).toBe(true);
  });

  it('hints the members added to and removed from a group in scope, and ignores groups out of scope', async () => {
    const { feed } = await startedFeed();
    const scope = graph();
    mockRound(scope, 'users', 'U1', [], 'U2');
    mockRound(
      scope,
      'groups',
      'G1',
      [
        {
          id: 'g1',
          displayName: 'Sales',
          'members@delta': [
            { '@odata.type': USER, id: 'u7' },
            { '@odata.type': USER, id: 'u8', '@removed': { reason: 'deleted' } },
            { '@odata.type': GROUP, id: 'g9' },
          ],
        },
        { id: 'g2', displayName: 'Elsewhere', 'members@delta': [{ '@odata.type': USER, id: 'u9' }] },
      ],
      'G2',
    );
    const batch = await feed.poll();
    expect(batch.hints).toEqual([
      { userId: 'u7', atMs: expect.any(Number), what: 'groups delta: member added to Sales' },
      { userId: 'u8', atMs: expect.any(Number), what: 'groups delta: member removed from Sales' },
    ]);
  });

  it('asks for a full cycle when a group in scope is renamed or deleted', async () => {
    const { feed } = await startedFeed();
    const scope = graph();
    mockRound(scope, 'users', 'U1', [], 'U2');
    mockRound(scope, 'groups', 'G1', [{ id: 'g1', displayName: 'Sales EMEA' }], 'G2');
    const renamed = await feed.poll();
    expect(renamed.hints).toEqual([{ fullCycle: 'group Sales was renamed to Sales EMEA', atMs: expect.any(Number), what: 'groups delta' }]);
    await renamed.commit();

    // The new name is remembered: an entry for a membership change that repeats it asks for no cycle.
    mockRound(scope, 'users', 'U2', [], 'U3');
    mockRound(scope, 'groups', 'G2', [{ id: 'g1', displayName: 'Sales EMEA', 'members@delta': [{ id: 'u1' }] }], 'G3');
    const member = await feed.poll();
    expect(member.hints).toEqual([{ userId: 'u1', atMs: expect.any(Number), what: 'groups delta: member added to Sales EMEA' }]);
    await member.commit();

    mockRound(scope, 'users', 'U3', [], 'U4');
    mockRound(scope, 'groups', 'G3', [{ id: 'g1', '@removed': { reason: 'changed' } }], 'G4');
    expect((await feed.poll()).hints).toEqual([expect.objectContaining({ fullCycle: 'group Sales EMEA was deleted' })]);
    expect(scope.isDone()).toBe(true);
  });

  it('asks for one full cycle and starts again from now when Graph no longer knows the delta link', async () => {
    const { feed, state } = await startedFeed();
    const scope = graph();
    scope
      .get('/v1.0/users/delta')
      .query({ $deltatoken: 'U1' })
      .reply(410, { error: { code: 'syncStateNotFound', message: 'The sync state generation is not found.' } });
    mockLatest(scope, 'U9', 'G9');
    scope.get('/v1.0/groups/g1').query(true).reply(200, { id: 'g1', displayName: 'Sales' });
    const batch = await feed.poll();
    expect(batch.hints).toEqual([
      { fullCycle: expect.stringMatching(/delta link cannot continue.*syncStateNotFound/), atMs: expect.any(Number), what: 'delta link reset' },
    ]);
    await batch.commit();
    expect(JSON.parse((await state.get(FEED_KEY)) ?? '{}')).toMatchObject({ usersLink: userLink('U9'), groupsLink: groupLink('G9') });

    // resyncRequired on the groups round counts the same.
    mockRound(scope, 'users', 'U9', [user('u1')], 'U10');
    scope
      .get('/v1.0/groups/delta')
      .query({ $deltatoken: 'G9' })
      .reply(400, { error: { code: 'resyncRequired', message: 'Resync required.' } });
    mockLatest(scope, 'U11', 'G11');
    scope.get('/v1.0/groups/g1').query(true).reply(200, { id: 'g1', displayName: 'Sales' });
    const again = await feed.poll();
    expect(again.hints.map((h) => h.userId ?? h.fullCycle)).toEqual(['u1', expect.stringMatching(/resyncRequired/)]);
    expect(scope.isDone()).toBe(true);
  });

  it('asks for a full cycle instead of reading more pages than a round may', async () => {
    const { feed } = await startedFeed({ changes: { delta: { maxPages: 2 } } });
    const scope = graph();
    for (const [from, to] of [
      ['U1', 'P2'],
      ['P2', 'P3'],
    ]) {
      scope
        .get('/v1.0/users/delta')
        .query(from === 'U1' ? { $deltatoken: from } : { $skiptoken: from })
        .reply(200, page([user(`u-${from}`)], { next: `${GRAPH}/v1.0/users/delta?$skiptoken=${to}` }));
    }
    scope
      .get('/v1.0/users/delta')
      .query({ $skiptoken: 'P3' })
      .reply(200, page([user('u3')], { next: `${GRAPH}/v1.0/users/delta?$skiptoken=P4` }));
    mockLatest(scope, 'U5', 'G5');
    scope.get('/v1.0/groups/g1').query(true).reply(200, { id: 'g1', displayName: 'Sales' });
    const batch = await feed.poll();
    expect(batch.hints.find((h) => h.fullCycle)?.fullCycle).toMatch(/more changes than 2 pages/);
  });

  it('throws and keeps its position when Graph fails, sends an error in a 200, or sends a page it cannot read', async () => {
    const { feed, state } = await startedFeed();
    const position = await state.get(FEED_KEY);
    const scope = graph();
    scope
      .get('/v1.0/users/delta')
      .query({ $deltatoken: 'U1' })
      .times(3)
      .reply(503, { error: { code: 'serviceNotAvailable', message: `backend said ${SECRET}` } });
    const failed = await feed.poll().catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(SourceReadError);
    expect((failed as Error).message).toMatch(/Entra delta round failed: .*HTTP 503/);
    expectNoLeak(SECRET, failed);

    scope
      .get('/v1.0/users/delta')
      .query({ $deltatoken: 'U1' })
      .reply(200, { error: { code: 'InternalServerError', message: 'Something went wrong' } });
    await expect(feed.poll()).rejects.toThrow(/page tvsync cannot read/);

    scope.get('/v1.0/users/delta').query({ $deltatoken: 'U1' }).reply(200, '{"value":[{"id":"u1"', { 'content-type': 'application/json' });
    await expect(feed.poll()).rejects.toBeInstanceOf(SourceReadError);

    mockRound(scope, 'users', 'U1', [], 'U2');
    scope.get('/v1.0/groups/delta').query({ $deltatoken: 'G1' }).reply(200, page([]));
    await expect(feed.poll()).rejects.toThrow(/ended without a delta link/);
    expect(await state.get(FEED_KEY)).toBe(position);

    // Throttled: waits as told, then reads the same round.
    scope
      .get('/v1.0/users/delta')
      .query({ $deltatoken: 'U1' })
      .reply(429, { error: { code: 'TooManyRequests', message: 'slow down' } }, { 'Retry-After': '1' });
    mockRound(scope, 'users', 'U1', [user('u1')], 'U2');
    mockRound(scope, 'groups', 'G1', [], 'G2');
    const started = Date.now();
    const batch = await feed.poll();
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(batch.hints.map((h) => h.userId)).toEqual(['u1']);
    expect(batch.requests).toBe(3);
    expect(scope.isDone()).toBe(true);
  });

  it('in assignment mode, hints users assigned or unassigned directly and asks for a cycle when a group is (un)assigned', async () => {
    const state = new MemoryStateStore();
    const overrides = { scope: { mode: 'assignment', servicePrincipalId: 'sp1' } };
    const scope = graph();
    const assignments = (rows: unknown[]) =>
      scope
        .get('/v1.0/servicePrincipals/sp1/appRoleAssignedTo')
        .query({ $select: 'principalId,principalType,principalDisplayName', $top: '999' })
        .reply(200, page(rows));
    assignments([assignment('u1', 'User', 'User u1'), assignment('u2', 'User', 'User u2'), assignment('g1', 'Group', 'Sales')]);
    mockLatest(scope, 'U1', 'G1');
    const { source } = sourceOf(overrides, { state });
    const feed = await source.changeFeed?.();
    await (await feed?.poll())?.commit();

    assignments([assignment('u2', 'User', 'User u2'), assignment('u3', 'User', 'User u3'), assignment('g1', 'Group', 'Sales')]);
    mockRound(scope, 'users', 'U1', [], 'U2');
    mockRound(scope, 'groups', 'G1', [], 'G2');
    const users = await feed?.poll();
    expect(users?.hints).toEqual([
      { userId: 'u3', atMs: expect.any(Number), what: 'app assignment added' },
      { userId: 'u1', atMs: expect.any(Number), what: 'app assignment removed' },
    ]);
    await users?.commit();

    assignments([assignment('u2', 'User', 'User u2'), assignment('u3', 'User', 'User u3'), assignment('g2', 'Group', 'Ops')]);
    mockRound(scope, 'users', 'U2', [], 'U3');
    mockRound(scope, 'groups', 'G2', [], 'G3');
    const groups = await feed?.poll();
    expect(groups?.hints).toEqual([
      { fullCycle: 'group Ops was assigned to the app; group Sales was unassigned from the app', atMs: expect.any(Number), what: 'app assignments' },
    ]);
    expect(scope.isDone()).toBe(true);
  });
});
