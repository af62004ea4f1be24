import { describe, expect, it } from 'vitest';
import { createRequestPacer } from '../../src/net/request-rate.js';

describe('createRequestPacer', () => {
  it('lets a second’s worth start at once, then spaces the rest by the rate, in call order', async () => {
    const pace = createRequestPacer(50);
    const t0 = performance.now();
    const startedAt: number[] = [];
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        pace(async () => {
          order.push(i);
          startedAt[i] = performance.now() - t0;
        }),
      ),
    );
    expect(order).toEqual(Array.from({ length: 60 }, (_, i) => i));
    // Ten beyond the burst of 50 at 50 a second: the last cannot start before 10 × 20 ms have passed.
    expect(startedAt[59]).toBeGreaterThanOrEqual(195);
    expect(startedAt[49]).toBeLessThan(startedAt[59] ?? 0);
  });

  it('passes a task’s result and failure through, and a failure does not hold up the next turn', async () => {
    const pace = createRequestPacer(1000);
    await expect(pace(async () => 'done')).resolves.toBe('done');
    await expect(pace(async () => Promise.reject(new Error('no')))).rejects.toThrow('no');
    await expect(pace(async () => 'next')).resolves.toBe('next');
  });

  it('refuses a rate that is not positive', () => {
    expect(() => createRequestPacer(0)).toThrow(RangeError);
  });

  it('reads a rate given as a function at every turn: a learned rate that falls slows the pages still to come', async () => {
    let rate = 1000;
    const pace = createRequestPacer(() => rate);
    const t0 = performance.now();
    await Promise.all(Array.from({ length: 5 }, () => pace(async () => undefined)));
    const fast = performance.now() - t0;
    rate = 20;
    const t1 = performance.now();
    // The burst left by the fast rate is capped at the new rate's second (20): 25 more need 5 × 50 ms at least.
    await Promise.all(Array.from({ length: 25 }, () => pace(async () => undefined)));
    expect(fast).toBeLessThan(100);
    expect(performance.now() - t1).toBeGreaterThanOrEqual(190);
  });
});
