import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemorySyncState, RedisSyncState, type SyncState } from '../../src/store/sync-state.js';
import { dropPrefix, REDIS_URL, testPrefix } from '../support/redis.js';

const prefix = testPrefix('state');
let redis: Redis;

beforeAll(() => {
  redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
});
afterAll(async () => {
  await redis.quit();
  await dropPrefix(prefix);
});

const kinds: [string, () => SyncState][] = [
  ['redis', () => new RedisSyncState(redis, prefix, `s${Math.random().toString(36).slice(2)}`)],
  ['memory', () => new MemorySyncState()],
];

describe.each(kinds)('%s sync state', (_kind, make) => {
  it('keeps links, applies set and drop, and drops only links that still point where the plan saw them', async () => {
    const state = make();
    await state.setLink('a', 'u1');
    await state.setLink('b', 'u2');
    await state.setLink('c', 'u3');
    await state.applyLinkChanges([
      { action: 'set', sourceId: 'd', tvUserId: 'u4', reason: 'matched-by-email' },
      { action: 'drop', sourceId: 'a', tvUserId: 'u1', reason: 'teamviewer-user-gone' },
      { action: 'drop', sourceId: 'b', tvUserId: 'u-other', reason: 'relinked' },
    ]);
    expect(Object.fromEntries(await state.loadLinks())).toEqual({ b: 'u2', c: 'u3', d: 'u4' });
  });

  it('answers the links of the users asked for, leaving out those without one, past one read’s worth', async () => {
    const state = make();
    const ids = Array.from({ length: 25_000 }, (_, i) => `e${i}`);
    await state.applyLinkChanges(
      ids.filter((_, i) => i % 2 === 0).map((id) => ({ action: 'set', sourceId: id, tvUserId: `u-${id}`, reason: 'matched-by-email' })),
    );
    const links = await state.getLinks([...ids, 'nobody']);
    expect(links.size).toBe(12_500);
    expect(links.get('e24998')).toBe('u-e24998');
    expect(links.has('e24999')).toBe(false);
    expect(links.has('nobody')).toBe(false);
    expect(await state.getLinks([])).toEqual(new Map());
    const all = await state.loadLinks();
    expect(all.size).toBe(12_500);
    expect(all.get('e0')).toBe('u-e0');
    expect([...all.values()].every((tv) => tv.startsWith('u-e'))).toBe(true);
  });

  it('keeps group links and drops one only while it points where the caller saw it', async () => {
    const state = make();
    await state.setGroupLink('g1', '101');
    await state.setGroupLink('g2', '102');
    await state.dropGroupLink('g1', '999');
    await state.dropGroupLink('g2', '102');
    expect(Object.fromEntries(await state.loadGroupLinks())).toEqual({ g1: '101' });
  });

  it('keeps outside-company records', async () => {
    const state = make();
    await state.recordOutsideCompany('x@y.test', { atMs: 5, message: 'owned elsewhere' });
    expect(await state.loadOutsideCompany()).toEqual(new Map([['x@y.test', { atMs: 5, message: 'owned elsewhere' }]]));
    await state.clearOutsideCompany('x@y.test');
    expect((await state.loadOutsideCompany()).size).toBe(0);
  });

  it('keeps the deactivations tvsync applied after the link goes, and forgets one when told', async () => {
    const state = make();
    await state.setLink('a', 'u1');
    await state.recordDeactivated('u1', { sourceId: 'a', atMs: 1_700_000_000_000 });
    await state.recordDeactivated('u2', { sourceId: 'b', atMs: 1_700_000_000_001 });
    await state.applyLinkChanges([{ action: 'drop', sourceId: 'a', tvUserId: 'u1', reason: 'relinked' }]);
    expect(await state.getDeactivated('u1')).toEqual({ sourceId: 'a', atMs: 1_700_000_000_000 });
    await state.clearDeactivated('u2');
    expect(Object.fromEntries(await state.loadDeactivated())).toEqual({ u1: { sourceId: 'a', atMs: 1_700_000_000_000 } });
    expect(await state.getDeactivated('u2')).toBeUndefined();
  });

  it('keeps connector state', async () => {
    const state = make();
    await state.source.set('delta', 'link-1');
    expect(await state.source.get('delta')).toBe('link-1');
    await state.source.delete('delta');
    expect(await state.source.get('delta')).toBeUndefined();
  });
});

describe('deactivation records in Redis', () => {
  it('counts a record it cannot read as none', async () => {
    const sync = `s${Math.random().toString(36).slice(2)}`;
    const state = new RedisSyncState(redis, prefix, sync);
    await redis.hset(`${prefix}:sync:${sync}:deactivated`, 'u1', 'not json', 'u2', JSON.stringify({ sourceId: '', atMs: 1 }));
    expect(await state.getDeactivated('u1')).toBeUndefined();
    expect((await state.loadDeactivated()).size).toBe(0);
  });
});

describe('links in Redis', () => {
  it('are read whole from a server without HRANDFIELD (before Redis 6.2) too', async () => {
    const old = new Proxy(redis, {
      get(target, property, receiver) {
        if (property === 'hrandfield') return () => Promise.reject(new Error("ERR unknown command 'hrandfield', with args beginning with: "));
        const value = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const sync = `old${Math.random().toString(36).slice(2)}`;
    await new RedisSyncState(redis, prefix, sync).applyLinkChanges([
      { action: 'set', sourceId: 'a', tvUserId: 'u1', reason: 'matched-by-email' },
      { action: 'set', sourceId: 'b', tvUserId: 'u2', reason: 'matched-by-email' },
    ]);
    const state = new RedisSyncState(old, prefix, sync);
    expect(await state.loadLinks()).toEqual(
      new Map([
        ['a', 'u1'],
        ['b', 'u2'],
      ]),
    );
    expect(await state.loadLinks()).toEqual(
      new Map([
        ['a', 'u1'],
        ['b', 'u2'],
      ]),
    );
  });

  it('none stored reads as none', async () => {
    expect(await new RedisSyncState(redis, prefix, 'never-linked').loadLinks()).toEqual(new Map());
  });
});

describe('namespacing', () => {
  it('keeps two syncs apart', async () => {
    const one = new RedisSyncState(redis, prefix, 'one');
    const two = new RedisSyncState(redis, prefix, 'two');
    await one.setLink('a', 'u1');
    await two.source.set('k', 'v');
    expect((await two.loadLinks()).size).toBe(0);
    expect(await one.source.get('k')).toBeUndefined();
    expect(await redis.hget(`${prefix}:sync:one:links`, 'a')).toBe('u1');
  });
});
