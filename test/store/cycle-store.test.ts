import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import type { Plan } from '../../src/plan/types.js';
import { buildReport, type OperationResult } from '../../src/plan/report.js';
import { CycleStore } from '../../src/store/cycle-store.js';
import { REDACTED, registerSecret, secrets } from '../../src/net/secrets.js';
import { syncKeys } from '../../src/store/keys.js';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.js';

const redis = new Redis(REDIS_URL);
const prefixes: string[] = [];
afterAll(async () => {
  await Promise.all(prefixes.map(dropPrefix));
  await redis.quit();
});

function planOf(n: number): Plan {
  const operations = Array.from({ length: n }, (_, i) => ({
    kind: 'createUser' as const,
    sourceId: `e${i}`,
    email: `user${i}@corp.example`,
    user: { userName: `user${i}@corp.example`, displayName: `User ${i}`, active: true },
    reason: 'new-in-scope' as const,
    message: `create user${i}@corp.example`,
  }));
  return {
    operations,
    held: [],
    skipped: [],
    links: [],
    notices: [],
    threshold: { deactivations: 0, managed: 0, exceeded: false },
    summary: {
      inScope: n,
      teamviewerUsers: 0,
      managed: 0,
      unchanged: 0,
      operations: { createUser: n, updateUser: 0, deactivateUser: 0, reactivateUser: 0 },
      held: 0,
      skipped: {},
    },
  };
}

const applied = (i: number): OperationResult => ({
  key: `createUser.e${i}`,
  kind: 'createUser',
  status: 'applied',
  message: `created user${i}@corp.example as ${1000 + i}`,
  attempts: 1,
  sourceId: `e${i}`,
  email: `user${i}@corp.example`,
  after: { displayName: `User ${i}`, active: true },
  tvUserId: String(1000 + i),
});

function store() {
  const prefix = testPrefix('cycle-store');
  prefixes.push(prefix);
  return { store: new CycleStore(redis, prefix, 'corp'), keys: syncKeys(prefix, 'corp') };
}

/**
 * Cycle c1 with one applied outcome, stopped out of time and finished; `meanwhile` runs between
 * reading the outcomes the report is built from and folding them into the record.
 */
async function finishStopped(cycles: CycleStore, meanwhile: () => Promise<void> = async () => {}): Promise<void> {
  await cycles.begin('c1', 'manual', 1);
  await cycles.recordResult('c1', applied(1));
  await cycles.stop('c1', 'the cycle ended: out of time');
  const results = await cycles.results('c1');
  await meanwhile();
  await cycles.finish('c1', buildReport({ sync: 'corp', cycleId: 'c1', trigger: 'manual', startedAtMs: 1, finishedAtMs: 2, results }), results);
}

describe('a cycle record', () => {
  it('keeps a large plan compressed and gives it back as it was; a plan stored as plain JSON is still read', async () => {
    const { store: cycles, keys } = store();
    const plan = planOf(5000);
    await cycles.begin('c1', 'manual', 1);
    await cycles.savePlan('c1', plan, { users: [] } as never);
    expect((await cycles.load('c1'))?.plan).toEqual(plan);
    const json = Buffer.byteLength(JSON.stringify(plan));
    expect(await redis.hstrlen(keys.cycle('c1'), 'plan')).toBeLessThan(json / 5);

    await cycles.begin('c2', 'manual', 1);
    await redis.hset(keys.cycle('c2'), 'plan', JSON.stringify(plan), 'directoryGroups', JSON.stringify({ users: [] }), 'status', 'applying');
    expect((await cycles.load('c2'))?.plan).toEqual(plan);
  });

  it('folds the outcomes into the record when the cycle finishes: one field instead of a hash field each, all still read', async () => {
    const { store: cycles, keys } = store();
    await cycles.begin('c1', 'manual', 1);
    const results = Array.from({ length: 300 }, (_, i) => applied(i));
    for (const result of results) await cycles.recordResult('c1', result);
    expect(await redis.hlen(keys.cycleResults('c1'))).toBe(300);
    const report = buildReport({ sync: 'corp', cycleId: 'c1', trigger: 'manual', startedAtMs: 1, finishedAtMs: 2, results });
    await cycles.finish('c1', report, results);

    expect(await redis.exists(keys.cycleResults('c1'))).toBe(0);
    expect(await cycles.resultCount('c1')).toBe(300);
    expect(new Map((await cycles.results('c1')).map((r) => [r.key, r]))).toEqual(new Map(results.map((r) => [r.key, r])));
    // A finished cycle that was not stopped had every outcome: a late re-delivery of one of its operations runs nothing.
    expect(await cycles.stoppedOrDone('c1', 'createUser.e7')).toEqual([undefined, true]);
  });

  it('keeps an outcome recorded while the cycle was finishing, after the outcomes it folded were read', async () => {
    const { store: cycles, keys } = store();
    // An operation past its stop check when the cycle stopped: it ran, and its outcome lands now.
    await finishStopped(cycles, () => cycles.recordResult('c1', applied(2)));

    expect(await redis.hkeys(keys.cycleResults('c1'))).toEqual(['createUser.e2']);
    expect(new Map((await cycles.results('c1')).map((r) => [r.key, r.status]))).toEqual(
      new Map([
        ['createUser.e1', 'applied'],
        ['createUser.e2', 'applied'],
      ]),
    );
    expect(await cycles.stoppedOrDone('c1', 'createUser.e2')).toEqual(['the cycle ended: out of time', true]);
  });

  it('after a stopped cycle finished, a late outcome is kept (with an expiry) but never replaces an earlier one', async () => {
    const { store: cycles, keys } = store();
    await finishStopped(cycles);

    // An operation still queued has no outcome yet: it is cancelled and says so.
    expect(await cycles.stoppedOrDone('c1', 'createUser.e2')).toEqual(['the cycle ended: out of time', false]);
    const cancelled = (i: number): OperationResult => ({ ...applied(i), status: 'cancelled', message: 'not run' });
    await cycles.recordResult('c1', cancelled(2));
    await cycles.recordResult('c1', cancelled(1));
    expect(await redis.ttl(keys.cycleResults('c1'))).toBeGreaterThan(0);
    const byKey = new Map((await cycles.results('c1')).map((r) => [r.key, r.status]));
    expect(byKey).toEqual(
      new Map([
        ['createUser.e1', 'applied'],
        ['createUser.e2', 'cancelled'],
      ]),
    );
  });
});

/** Runs `fn` with `secret` registered with the process's scrubber, and forgets it after. */
async function withSecret(secret: string, fn: () => Promise<void>): Promise<void> {
  registerSecret(secret);
  try {
    await fn();
  } finally {
    secrets.clear();
  }
}

describe('outcomes kept', () => {
  it('are scrubbed of a secret in any field, and stay readable JSON when the secret needs escaping', async () => {
    const { store: s } = store();
    const secret = 'pa"ss\\word-4711-secret';
    await withSecret(secret, async () => {
      await s.recordResults('c1', [
        { ...applied(1), message: `TeamViewer said: bad token ${secret}` },
        { ...applied(2), email: `x${secret.slice(3, 14)}@corp.example` },
        applied(3),
      ]);
      const results = await s.results('c1');
      expect(results).toHaveLength(3);
      const text = JSON.stringify(results);
      expect(text).not.toContain('word-471');
      expect(results.find((r) => r.key === 'createUser.e1')?.message).toBe(`TeamViewer said: bad token ${REDACTED}`);
      expect(results.find((r) => r.key === 'createUser.e3')).toEqual(applied(3));
    });
  });

  it('redacts a secret whose escaped form is in a message, which the JSON text hides behind a second escape', async () => {
    const { store: s } = store();
    const secret = 'ab"cd"ef"gh';
    await withSecret(secret, async () => {
      // A server that echoed the secret inside its own JSON, quoted back in an error message.
      const echoed = JSON.stringify(secret).slice(1, -1);
      await s.recordResults('c2', [{ ...applied(4), message: `TeamViewer said: {"token":"${echoed}"}` }]);
      const [kept] = await s.results('c2');
      expect(kept?.message).not.toContain(echoed);
      expect(kept?.message).toContain(REDACTED);
    });
  });
});
