import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryWrittenStore, RedisWrittenStore, packUser, unpackUser, type WrittenStore } from '../../src/store/written.js';
import { syncKeys } from '../../src/store/keys.js';
import { dropPrefix, REDIS_URL, testPrefix } from '../support/redis.js';

const prefix = testPrefix('written');
let redis: Redis;

beforeAll(() => {
  redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
});
afterAll(async () => {
  await redis.quit();
  await dropPrefix(prefix);
});

const kinds: [string, () => WrittenStore][] = [
  ['redis', () => new RedisWrittenStore(redis, prefix, 'corp')],
  ['memory', () => new MemoryWrittenStore()],
];

describe('the packed user record', () => {
  it('round-trips, names with any characters included, and rejects what it did not write', () => {
    const user = { displayName: '01 Ann "Q" Ü', active: false, seen: true };
    expect(packUser(user)).toBe('0101 Ann "Q" Ü');
    expect(unpackUser(packUser(user))).toEqual(user);
    expect(unpackUser('x1Ann')).toBeUndefined();
  });
});

describe.each(kinds)('%s written store', (kind, make) => {
  it('sets and drops users, groups and members; a member record makes its group known', async () => {
    const store = make();
    await store.apply({
      users: { set: [['u1', { displayName: 'Ann', active: true, seen: false }]], drop: [] },
      groups: { set: [['g1', { displayName: 'Sales', created: true, seen: false }]], drop: [] },
      members: [
        { tvGroupId: 'g1', set: [['u1', { in: true, seen: false }]], drop: [] },
        { tvGroupId: 'g2', set: [['u1', { in: false, seen: true }]], drop: [] },
      ],
    });
    let records = await store.load();
    expect(records.users.get('u1')).toEqual({ displayName: 'Ann', active: true, seen: false });
    expect(records.groups.get('g1')).toEqual({ displayName: 'Sales', created: true, seen: false, members: new Map([['u1', { in: true, seen: false }]]) });
    expect(records.groups.get('g2')).toEqual({ created: false, seen: true, members: new Map([['u1', { in: false, seen: true }]]) });

    // A group's own record replaced keeps its members; a dropped group loses them.
    await store.apply({
      users: { set: [], drop: ['u1'] },
      groups: { set: [['g1', { displayName: 'Sales', created: true, seen: true }]], drop: ['g2'] },
      members: [],
    });
    records = await store.load();
    expect(records.users.size).toBe(0);
    expect(records.groups.get('g1')?.seen).toBe(true);
    expect(records.groups.get('g1')?.members.size).toBe(1);
    expect(records.groups.has('g2')).toBe(false);
    if (kind === 'redis') expect(await redis.exists(syncKeys(prefix, 'corp').written.members('g2'))).toBe(0);
  });
});
