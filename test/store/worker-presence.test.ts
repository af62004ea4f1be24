import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { syncKeys } from '../../src/store/keys.js';
import { WorkerPresence } from '../../src/store/worker-presence.js';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.js';

const redis = new Redis(REDIS_URL);
const prefix = testPrefix('presence');
afterAll(async () => {
  await dropPrefix(prefix);
  await redis.quit();
});

describe('worker presence', () => {
  it('counts a worker from its beat until it leaves, while another still beats', async () => {
    const a = new WorkerPresence(redis, prefix, 'corp', 'host-a:1');
    const b = new WorkerPresence(redis, prefix, 'corp', 'host-b:2');
    expect(await a.lastSeen()).toBeUndefined();
    await a.beat();
    await b.beat();
    const seen = await a.lastSeen();
    expect(seen).toBeGreaterThan(Date.now() - 60_000);
    await a.leave();
    expect(await a.lastSeen()).toBeDefined();
    await b.leave();
    expect(await a.lastSeen()).toBeUndefined();
    // Each sync has its own.
    await a.beat();
    expect(await new WorkerPresence(redis, prefix, 'other').lastSeen()).toBeUndefined();
    await a.leave();
  });

  it('forgets a worker that went silent (killed, no leave) once the window has passed', async () => {
    const killed = new WorkerPresence(redis, prefix, 'silent', 'host-c:3');
    await killed.beat(200);
    expect(await killed.lastSeen(200)).toBeDefined();
    await sleep(300);
    expect(await killed.lastSeen(200)).toBeUndefined();
    expect(await redis.exists(syncKeys(prefix, 'silent').workerSeen)).toBe(0);
  });
});
