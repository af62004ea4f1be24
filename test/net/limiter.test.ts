import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { createLimiter, mapLimited } from '../../src/net/limiter.js';

describe('createLimiter', () => {
  it('runs at most max tasks at once, the others in order', async () => {
    const slot = createLimiter(2);
    let active = 0;
    let most = 0;
    const started: number[] = [];
    await Promise.all(
      [0, 1, 2, 3, 4].map((i) =>
        slot(async () => {
          started.push(i);
          most = Math.max(most, ++active);
          await sleep(5);
          active--;
        }),
      ),
    );
    expect(most).toBe(2);
    expect(started).toEqual([0, 1, 2, 3, 4]);
  });

  it('frees the slot of a task that failed', async () => {
    const slot = createLimiter(1);
    await expect(slot(async () => Promise.reject(new Error('no')))).rejects.toThrow('no');
    await expect(slot(async () => 'next')).resolves.toBe('next');
  });
});

describe('mapLimited', () => {
  it('keeps the results in the order of the items, with at most limit in flight', async () => {
    let active = 0;
    let most = 0;
    const results = await mapLimited([30, 10, 20, 5], 2, async (ms) => {
      most = Math.max(most, ++active);
      await sleep(ms);
      active--;
      return ms * 2;
    });
    expect(results).toEqual([60, 20, 40, 10]);
    expect(most).toBe(2);
  });

  it('hands out no item after the first failure', async () => {
    const seen: number[] = [];
    const run = mapLimited([1, 2, 3, 4, 5], 1, async (n) => {
      seen.push(n);
      if (n === 2) throw new Error('item 2 failed');
      return n;
    });
    await expect(run).rejects.toThrow('item 2 failed');
    expect(seen).toEqual([1, 2]);
  });
});
