import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { AlertStore } from '../../src/store/alerts.js';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.js';

const prefix = testPrefix('alert-store');
const connections = Array.from({ length: 4 }, () => new Redis(REDIS_URL));
afterAll(async () => {
  await Promise.all(connections.map((c) => c.quit()));
  await dropPrefix(prefix);
});

describe('alert store', () => {
  it('lets exactly one of several replicas claim a firing condition, and one its resolution', async () => {
    const stores = connections.map((c) => new AlertStore(c, prefix, 'corp'));
    const record = { kind: 'held' as const, summary: 'Sync corp holds 5 deactivations', sinceMs: 1000 };
    const fired = await Promise.all(stores.map((s) => s.claimFiring('held:corp', record)));
    expect(fired.filter(Boolean)).toHaveLength(1);
    expect(await stores[0]?.alerted()).toEqual(new Map([['held:corp', record]]));
    const resolved = await Promise.all(stores.map((s) => s.claimResolved('held:corp')));
    expect(resolved.filter(Boolean)).toEqual([record]);
    expect((await stores[1]?.alerted())?.size).toBe(0);
  });

  it('lets one evaluation of a sync hold the lock at a time, and only its holder release it', async () => {
    const [a, b] = connections.map((c) => new AlertStore(c, prefix, 'hr'));
    const owner = await a?.lock(10_000);
    expect(owner).toBeDefined();
    expect(await b?.lock(10_000)).toBeUndefined();
    await b?.unlock('someone-else');
    expect(await b?.lock(10_000)).toBeUndefined();
    await a?.unlock(owner ?? '');
    expect(await b?.lock(10_000)).toBeDefined();
  });

  it('drops a record that does not parse, so its condition fires again', async () => {
    const store = new AlertStore(connections[0] as Redis, prefix, 'ops');
    await connections[0]?.hset(`${prefix}:sync:ops:alerts`, 'held:ops', '{not json');
    expect((await store.alerted()).size).toBe(0);
  });
});
