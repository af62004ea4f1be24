import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RequestRateGovernor } from '../../src/runtime/request-rate.js';
import { syncKeys } from '../../src/store/keys.js';
import { RequestRateStore } from '../../src/store/request-rate.js';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.js';

let redis: Redis;
const prefix = testPrefix('request-rate');
const silent = pino({ level: 'silent' });

beforeAll(() => {
  redis = new Redis(REDIS_URL);
});
afterAll(async () => {
  await dropPrefix(prefix);
  redis.disconnect();
});

describe('the learned request rate, shared by replicas', () => {
  it('is kept per sync; a cut always lands, a rise only when no other replica changed the rate meanwhile', async () => {
    const a = new RequestRateStore(redis, prefix, 'corp');
    const b = new RequestRateStore(redis, prefix, 'corp');
    expect(await a.load()).toBeUndefined();
    expect(await a.apply(10, { rate: 15 })).toEqual({ rate: 15 });
    // b read 10 too and wants 15 → 22.5: someone moved it since, so the stored rate stands.
    expect((await b.apply(10, { rate: 22.5 })).rate).toBe(15);
    // b saw a 429 at its stale 10: the lower rate wins.
    expect(await b.apply(10, { rate: 8, throttledAt: 10 })).toEqual({ rate: 8, throttledAt: 10 });
    // a cut to a rate above the stored one changes nothing.
    expect((await a.apply(15, { rate: 12 })).rate).toBe(8);
    expect(await new RequestRateStore(redis, prefix, 'other').load()).toBeUndefined();
    expect(await redis.pttl(syncKeys(prefix, 'corp').requestRate)).toBeGreaterThan(86_400_000);
  });

  it('the governor starts from the learned rate, counts answers, and sets the worker limiter each window', async () => {
    const store = new RequestRateStore(redis, prefix, 'gov');
    await store.apply(0, { rate: 100 });
    const rates: number[] = [];
    const governor = new RequestRateGovernor({ store, limits: { start: 10, ceiling: 400 }, log: silent, onRate: (r) => rates.push(r) });
    await governor.load();
    expect(governor.rate).toBe(100);
    const worker: { opts: { limiter?: { max: number; duration: number } } } = { opts: {} };
    governor.attach(worker);
    governor.stop();
    expect(worker.opts.limiter).toEqual({ max: 10, duration: 100 });

    for (let i = 0; i < 100; i++) governor.observe({ status: 200, ms: 12 });
    await governor.tick();
    expect(governor.rate).toBe(150);
    expect((await store.load())?.rate).toBe(150);
    expect(worker.opts.limiter).toEqual({ max: 15, duration: 100 });

    for (let i = 0; i < 100; i++) governor.observe({ status: 200, ms: 12 });
    governor.observe({ status: 429, ms: 3 });
    await governor.tick();
    expect(governor.rate).toBe(120);
    expect(await store.load()).toMatchObject({ rate: 120, throttledAt: 150, latencyFloorMs: 12 });
    expect(rates).toEqual([100, 150, 120]);
  });
});
