import { Redis } from 'ioredis';
import { afterAll, describe, expect, it, vi } from 'vitest';
import type { OperationResult } from '../../src/plan/report.js';
import { OutcomeLedger, type OutcomeLedgerOptions } from '../../src/runtime/outcome-ledger.js';
import { CycleStore } from '../../src/store/cycle-store.js';
import { RedisSyncState } from '../../src/store/sync-state.js';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.js';

const redis = new Redis(REDIS_URL);
const prefixes: string[] = [];
afterAll(async () => {
  await Promise.all(prefixes.map(dropPrefix));
  await redis.quit();
});

const created = (i: number): OperationResult => ({
  key: `createUser.e${i}`,
  kind: 'createUser',
  status: 'applied',
  message: `created user${i}@corp.example as tv${i}`,
  attempts: 1,
  sourceId: `e${i}`,
  email: `user${i}@corp.example`,
  after: { displayName: `User ${i}`, active: true },
  tvUserId: `tv${i}`,
});

function setup(options: OutcomeLedgerOptions = { lingerMs: 20, maxPending: 1000 }) {
  const prefix = testPrefix('outcome-ledger');
  prefixes.push(prefix);
  const store = new CycleStore(redis, prefix, 'corp');
  const state = new RedisSyncState(redis, prefix, 'corp');
  /** What the observers were handed, one entry per call. */
  const observed: string[][] = [];
  const ledger = new OutcomeLedger({ store, state, onResults: (results, cycleId) => void observed.push(results.map((r) => `${cycleId}/${r.key}`)) }, options);
  return { store, state, ledger, observed };
}

describe('the outcome ledger', () => {
  it('writes the outcomes that finish together in one write each for links and outcomes, and settles each once Redis holds it', async () => {
    const { store, state, ledger, observed } = setup();
    const hset = vi.spyOn(redis, 'hset');
    try {
      const writes = Array.from({ length: 50 }, (_, i) => ledger.add({ cycleId: 'c1', result: created(i), links: [[`e${i}`, `tv${i}`]] }));
      await Promise.all(writes);
      // One HSET of 50 links, one of 50 outcomes.
      expect(hset).toHaveBeenCalledTimes(2);
    } finally {
      hset.mockRestore();
    }
    expect((await store.resultKeys('c1')).size).toBe(50);
    const links = await state.loadLinks();
    expect(links.size).toBe(50);
    expect(links.get('e7')).toBe('tv7');
    // The observers (metrics, provisioning log) see the 50 in one call, in the order they finished.
    expect(observed).toHaveLength(1);
    expect(observed[0]).toHaveLength(50);
    expect(observed[0]?.[0]).toBe('c1/createUser.e0');
  });

  it('keeps each cycle’s outcomes under that cycle', async () => {
    const { store, ledger } = setup();
    await Promise.all([
      ledger.add({ cycleId: 'a', result: created(1) }),
      ledger.add({ cycleId: 'b', result: created(2) }),
      ledger.add({ cycleId: 'a', result: created(3) }),
    ]);
    expect([...(await store.resultKeys('a'))].sort()).toEqual(['createUser.e1', 'createUser.e3']);
    expect([...(await store.resultKeys('b'))]).toEqual(['createUser.e2']);
  });

  it('writes at once when asked (a job about to end) or when enough are waiting, without waiting out the linger', async () => {
    const { store, ledger } = setup({ lingerMs: 60_000, maxPending: 3 });
    const started = Date.now();
    const one = ledger.add({ cycleId: 'c', result: created(1) });
    ledger.flush();
    await one;
    await Promise.all([1, 2, 3].map((i) => ledger.add({ cycleId: 'd', result: created(10 + i) })));
    expect(Date.now() - started).toBeLessThan(5000);
    expect((await store.resultKeys('d')).size).toBe(3);
  });

  it('without a flush, an outcome is written once the linger has passed', async () => {
    const { store, ledger } = setup({ lingerMs: 30, maxPending: 1000 });
    const started = Date.now();
    await ledger.add({ cycleId: 'late', result: created(5) });
    expect(Date.now() - started).toBeGreaterThanOrEqual(25);
    expect((await store.resultKeys('late')).has('createUser.e5')).toBe(true);
  });

  it('rejects every outcome of a failed write, so no job ends as if they were kept, and writes the next ones', async () => {
    const { store, state, ledger } = setup();
    const recordResults = vi.spyOn(store, 'recordResults').mockRejectedValueOnce(new Error('Redis went away'));
    try {
      const failed = [ledger.add({ cycleId: 'f', result: created(1) }), ledger.add({ cycleId: 'f', result: created(2), links: [['e2', 'tv2']] })];
      for (const write of failed) await expect(write).rejects.toThrow('Redis went away');
      await ledger.add({ cycleId: 'f', result: created(3) });
    } finally {
      recordResults.mockRestore();
    }
    expect([...(await store.resultKeys('f'))]).toEqual(['createUser.e3']);
    // The link went out before the outcome that names it; the retried operation finds the user anyway.
    expect((await state.loadLinks()).get('e2')).toBe('tv2');
  });
});
