import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { renderLogEntries } from '../../src/cli/render-log.js';
import { ProvisioningLog, type ProvisioningLogEntry } from '../../src/observe/provisioning-log.js';
import type { SkippedItem } from '../../src/plan/types.js';
import type { OperationResult } from '../../src/plan/report.js';
import { syncKeys } from '../../src/store/keys.js';
import { dropPrefix, REDIS_URL, testPrefix } from '../support/redis.js';

const prefix = testPrefix('provlog');
let redis: Redis;
let syncCounter = 0;

/** A sync of its own per test, so tests never read each other's entries. */
function newLog(opts?: { maxEntries?: number }): ProvisioningLog {
  return new ProvisioningLog(redis, syncKeys(prefix, `s${++syncCounter}`).provisioningLog, opts);
}

beforeAll(() => {
  redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
});
afterAll(async () => {
  await redis.quit();
  await dropPrefix(prefix);
});

const T0 = Date.parse('2026-11-23T21:40:00.000Z');

const created: OperationResult = {
  key: 'createUser.s-1',
  kind: 'createUser',
  sourceId: 's-1',
  email: 'Jane@Corp.example',
  after: { displayName: 'Jane Doe', active: true },
  status: 'applied',
  tvUserId: 'u1000042',
  message: 'created Jane@Corp.example as u1000042',
  attempts: 1,
};
const updated: OperationResult = {
  key: 'updateUser.u1000042',
  kind: 'updateUser',
  sourceId: 's-1',
  email: 'jane@corp.example',
  before: { displayName: 'Jane Doe', active: true },
  after: { displayName: 'Jane Q. Doe' },
  status: 'applied',
  tvUserId: 'u1000042',
  message: 'updated jane@corp.example',
  attempts: 2,
};
const failed: OperationResult = {
  key: 'deactivateUser.u7',
  kind: 'deactivateUser',
  sourceId: 's-7',
  email: 'bob@corp.example',
  before: { displayName: 'Bob', active: true },
  after: { active: false },
  status: 'failed',
  tvUserId: 'u7',
  failureClass: 'forbidden',
  message: 'deactivate bob@corp.example: 403',
  attempts: 1,
};
const skips: SkippedItem[] = [
  { sourceId: 's-9', email: 'JANE@corp.example', reason: 'protected', message: 'jane is protected' },
  { sourceId: 's-10', reason: 'source-read-incomplete', message: 'no e-mail' },
];

describe('ProvisioningLog', () => {
  it('records outcomes and skips and reads them back newest first', async () => {
    const log = newLog();
    await log.recordResult('c1', created, T0);
    await log.recordSkipped('c1', skips, T0 + 1000);
    await log.recordResult('c2', updated, T0 + 60_000);
    await log.recordResult('c2', failed, T0 + 61_000);
    await log.recordResult('c2', {
      ...created,
      key: 'createUser.s-3',
      sourceId: 's-3',
      email: 'al@corp.example',
      status: 'cancelled',
      message: 'cancelled',
      attempts: 0,
      adopted: true,
    });

    const all = await log.query({});
    expect(all.map((e) => `${e.cycleId} ${e.kind} ${e.outcome}`)).toEqual([
      'c2 createUser cancelled',
      'c2 deactivateUser failed',
      'c2 updateUser applied',
      'c1 skipped skipped',
      'c1 skipped skipped',
      'c1 createUser applied',
    ]);
    expect(all[5]).toEqual({
      at: '2026-11-23T21:40:00.000Z',
      cycleId: 'c1',
      kind: 'createUser',
      outcome: 'applied',
      email: 'Jane@Corp.example',
      sourceId: 's-1',
      tvUserId: 'u1000042',
      after: { displayName: 'Jane Doe', active: true },
      attempts: 1,
      message: 'created Jane@Corp.example as u1000042',
    } satisfies ProvisioningLogEntry);
    expect(all[2]).toMatchObject({ at: '2026-11-23T21:41:00.000Z', before: { displayName: 'Jane Doe', active: true }, after: { displayName: 'Jane Q. Doe' } });
    expect(all[1]).toMatchObject({ failureClass: 'forbidden', tvUserId: 'u7', before: { active: true }, after: { active: false } });
    expect(all[0]?.adopted).toBe(true);
    expect(all[4]).toEqual({
      at: '2026-11-23T21:40:01.000Z',
      cycleId: 'c1',
      kind: 'skipped',
      outcome: 'skipped',
      email: 'JANE@corp.example',
      sourceId: 's-9',
      reason: 'protected',
      message: 'jane is protected',
    });
    expect(all[3]).toEqual({
      at: '2026-11-23T21:40:01.000Z',
      cycleId: 'c1',
      kind: 'skipped',
      outcome: 'skipped',
      sourceId: 's-10',
      reason: 'source-read-incomplete',
      message: 'no e-mail',
    });
    expect(await redis.type(log.key)).toBe('stream');
    expect(log.key).toMatch(new RegExp(`^${prefix}:sync:s\\d+:provisioning-log$`));
  });

  it('finds entries by e-mail in any case, by cycle, and both', async () => {
    const log = newLog();
    await log.recordResult('c1', created, T0);
    await log.recordSkipped('c1', skips, T0);
    await log.recordResult('c2', updated, T0 + 1);
    await log.recordResult('c2', failed, T0 + 2);

    const jane = await log.query({ email: 'jAnE@CORP.example' });
    expect(jane.map((e) => `${e.cycleId} ${e.kind}`)).toEqual(['c2 updateUser', 'c1 skipped', 'c1 createUser']);
    expect(await log.query({ email: ' jane@corp.example ' })).toHaveLength(3);
    expect(await log.query({ email: 'jane@corp' })).toEqual([]);

    const c1 = await log.query({ cycleId: 'c1' });
    expect(c1.map((e) => e.kind)).toEqual(['skipped', 'skipped', 'createUser']);
    expect(await log.query({ cycleId: 'C1' })).toEqual([]);

    const both = await log.query({ cycleId: 'c2', email: 'JANE@corp.example' });
    expect(both.map((e) => e.kind)).toEqual(['updateUser']);
    expect(await log.query({ cycleId: 'nope' })).toEqual([]);
  });

  it('stops at the limit, newest first (default 100)', async () => {
    const log = newLog();
    const items: SkippedItem[] = Array.from({ length: 250 }, (_, i) => ({
      email: i % 2 ? 'odd@corp.example' : `even${i}@corp.example`,
      reason: 'protected',
      message: `item ${i}`,
    }));
    await log.recordSkipped('c1', items, T0);
    expect(await log.query({})).toHaveLength(100);
    const five = await log.query({ limit: 5 });
    expect(five.map((e) => e.message)).toEqual(['item 249', 'item 248', 'item 247', 'item 246', 'item 245']);
    const odd = await log.query({ email: 'ODD@corp.example', limit: 3 });
    expect(odd.map((e) => e.message)).toEqual(['item 249', 'item 247', 'item 245']);
    expect(await log.query({ email: 'odd@corp.example', limit: 1000 })).toHaveLength(125);
    await expect(log.query({ limit: 0 })).rejects.toThrow();
    await expect(log.query({ limit: 2.5 })).rejects.toThrow();
  });

  it('keeps about maxEntries entries, the newest', async () => {
    const log = newLog({ maxEntries: 50 });
    for (let i = 0; i < 20; i++) await log.recordResult('c0', { ...created, message: `result ${i}` }, T0);
    await log.recordSkipped(
      'c1',
      Array.from({ length: 500 }, (_, i) => ({ email: `u${i}@corp.example`, reason: 'protected', message: `skip ${i}` })),
      T0,
    );
    const length = await redis.xlen(log.key);
    expect(length).toBe(50);
    const kept = await log.query({ limit: 10_000 });
    expect(kept).toHaveLength(50);
    expect(kept[0]?.message).toBe('skip 499');
    expect(kept[49]?.message).toBe('skip 450');
    // The e-mail index is cut together with the stream.
    expect(await redis.zcard(log.indexKey)).toBe(50);
    expect(await log.query({ email: 'u0@corp.example' })).toEqual([]);
    expect(await log.query({ email: 'jane@corp.example' })).toEqual([]);
    expect((await log.query({ email: 'U450@corp.example' })).map((e) => e.message)).toEqual(['skip 450']);
  });

  it('lets a large log run over its bound by at most 1% before cutting it back', async () => {
    const log = newLog({ maxEntries: 2000 });
    const write = (from: number, n: number) =>
      log.recordSkipped(
        'c',
        Array.from({ length: n }, (_, i) => ({ email: `u${from + i}@corp.example`, reason: 'protected', message: `skip ${from + i}` })),
        T0,
      );
    await write(0, 2000);
    await write(2000, 19);
    expect(await redis.xlen(log.key)).toBe(2019);
    await write(2019, 1);
    expect(await redis.xlen(log.key)).toBe(2000);
    expect(await redis.zcard(log.indexKey)).toBe(2000);
    await write(2020, 5000);
    expect(await redis.xlen(log.key)).toBeLessThan(2020);
    expect(await redis.zcard(log.indexKey)).toBe(await redis.xlen(log.key));
    expect((await log.query({ limit: 1 }))[0]?.message).toBe('skip 7019');
  });

  it('leaves out malformed entries and still fills the limit with good ones', async () => {
    const log = newLog();
    await log.recordResult('c1', created, T0);
    await log.recordResult('c1', { ...created, message: 'second' }, T0 + 1);
    const em = 'jane@corp.example';
    /** Written around the API, indexed the way the log indexes (padded stream id after a NUL). */
    const inject = async (...fields: string[]) => {
      const id = await redis.xadd(log.key, '*', ...fields);
      const [ms = '', seq = ''] = (id ?? '').split('-');
      await redis.zadd(log.indexKey, 0, `${em}\0${ms.padStart(16, '0')}-${seq.padStart(20, '0')}`);
    };
    await inject('em', em, 'cy', 'c1', 'e', '{not json');
    await inject('em', em, 'cy', 'c1', 'e', JSON.stringify({ at: 'yesterday', cycleId: 'c1', kind: 'createUser', outcome: 'applied', message: 'x' }));
    await inject(
      'em',
      em,
      'cy',
      'c1',
      'e',
      JSON.stringify({ at: '2026-11-23T21:40:00.000Z', cycleId: 'c1', kind: 'deleteUser', outcome: 'applied', message: 'x' }),
    );
    await inject(
      'em',
      em,
      'cy',
      'c1',
      'e',
      JSON.stringify({ at: '2026-11-23T21:40:00.000Z', cycleId: 'c1', kind: 'skipped', outcome: 'skipped', message: 'x', before: { displayName: 1 } }),
    );
    await inject('em', em, 'cy', 'c1', 'e', 'null');
    await inject('em', em, 'cy', 'c1', 'other', 'field');
    await inject('e', 'em');
    // An index member whose entry is gone.
    await redis.zadd(log.indexKey, 0, `${em}\0${'9'.repeat(16)}-${'0'.repeat(20)}`);
    await redis.zadd(log.indexKey, 0, `${em}\0garbage`);

    const all = await log.query({});
    expect(all.map((e) => e.message)).toEqual(['second', 'created Jane@Corp.example as u1000042']);
    const limited = await log.query({ email: 'JANE@corp.example', limit: 2 });
    expect(limited.map((e) => e.message)).toEqual(['second', 'created Jane@Corp.example as u1000042']);
    expect(await log.query({ cycleId: 'c1', limit: 1 })).toHaveLength(1);
  });

  it('records group operations and group skips', async () => {
    const log = newLog();
    await log.recordResult(
      'c1',
      {
        key: 'renameGroup.tg1',
        kind: 'renameGroup',
        sourceId: 'g1',
        group: 'Sales EMEA',
        before: { displayName: 'Sales' },
        after: { displayName: 'Sales EMEA' },
        status: 'applied',
        message: 'renamed Sales to Sales EMEA',
        attempts: 1,
      },
      T0,
    );
    await log.recordGroupSkipped(
      'c1',
      [{ sourceGroupId: 'g2', sourceUserId: 's-4', reason: 'member-not-provisioned', message: 's-4 is not in TeamViewer' }],
      T0 + 1,
    );
    const entries = await log.query({ cycleId: 'c1' });
    expect(entries).toEqual([
      {
        at: '2026-11-23T21:40:00.001Z',
        cycleId: 'c1',
        kind: 'skipped',
        outcome: 'skipped',
        sourceGroupId: 'g2',
        sourceId: 's-4',
        reason: 'member-not-provisioned',
        message: 's-4 is not in TeamViewer',
      },
      {
        at: '2026-11-23T21:40:00.000Z',
        cycleId: 'c1',
        kind: 'renameGroup',
        outcome: 'applied',
        sourceId: 'g1',
        group: 'Sales EMEA',
        before: { displayName: 'Sales' },
        after: { displayName: 'Sales EMEA' },
        attempts: 1,
        message: 'renamed Sales to Sales EMEA',
      },
    ]);
    expect(await redis.exists(log.indexKey)).toBe(0);
  });

  it("records a membership change with the group ids and its members, and finds it by each member's address", async () => {
    const log = newLog({ maxEntries: 3 });
    const added: OperationResult = {
      key: 'addGroupMembers.g1.0',
      kind: 'addGroupMembers',
      sourceId: 'g1',
      group: 'Sales',
      sourceGroupId: 'g1',
      tvGroupId: 'tg1',
      members: [
        { tvUserId: 'u1', sourceId: 's-1', email: 'Jane@Corp.example' },
        { tvUserId: 'u2', sourceId: 's-2', email: 'bob@corp.example' },
        { tvUserId: 'u3' },
      ],
      after: {},
      status: 'applied',
      message: 'add 3 members to Sales',
      attempts: 1,
    };
    await log.recordResult('c1', added, T0);
    const [entry] = await log.query({ email: 'jane@corp.example' });
    expect(entry).toEqual({
      at: '2026-11-23T21:40:00.000Z',
      cycleId: 'c1',
      kind: 'addGroupMembers',
      outcome: 'applied',
      sourceId: 'g1',
      group: 'Sales',
      sourceGroupId: 'g1',
      tvGroupId: 'tg1',
      members: added.members,
      after: {},
      attempts: 1,
      message: 'add 3 members to Sales',
    } satisfies ProvisioningLogEntry);
    expect(entry?.tvUserId).toBeUndefined();
    expect(await log.query({ email: 'BOB@corp.example', cycleId: 'c1' })).toEqual([entry]);
    expect(await redis.zcard(log.indexKey)).toBe(2);
    expect(renderLogEntries([entry!])).toContain('(members Jane@Corp.example, bob@corp.example, u3)');

    // Cut from the stream, the entry leaves the index under every address.
    for (let i = 0; i < 4; i++) await log.recordResult('c2', { ...created, email: `other${i}@corp.example` }, T0 + 1 + i);
    expect(await log.query({ email: 'jane@corp.example' })).toEqual([]);
    expect(await log.query({ email: 'bob@corp.example' })).toEqual([]);
    expect(await redis.zcard(log.indexKey)).toBe(await redis.xlen(log.key));
  });

  it('returns nothing for a sync without entries', async () => {
    expect(await newLog().query({ email: 'a@b.example' })).toEqual([]);
  });

  it('writes 100k skips in one call and finds one address among them quickly', async () => {
    const log = newLog();
    const n = 100_000;
    const items: SkippedItem[] = Array.from({ length: n }, (_, i) => ({
      sourceId: `s${i}`,
      email: `user${i}@corp.example`,
      reason: 'owned-outside-company',
      message: `user${i}@corp.example is owned outside the company`,
    }));
    let started = performance.now();
    await log.recordSkipped('big', items, T0);
    const writeMs = performance.now() - started;
    expect(await redis.xlen(log.key)).toBeGreaterThanOrEqual(n);

    started = performance.now();
    const oldest = await log.query({ email: 'USER0@corp.example' });
    const missing = await log.query({ email: 'nobody@corp.example' });
    const readMs = performance.now() - started;
    expect(oldest.map((e) => e.sourceId)).toEqual(['s0']);
    expect(missing).toEqual([]);
    expect((await log.query({ cycleId: 'big', limit: 3 })).map((e) => e.sourceId)).toEqual(['s99999', 's99998', 's99997']);
    // Generous bounds for a loaded CI machine; locally both are well under a second.
    expect(writeMs).toBeLessThan(20_000);
    expect(readMs).toBeLessThan(10_000);
  });
});

describe('renderLogEntries', () => {
  it('prints one aligned line per entry with before → after for updates', () => {
    const entries: ProvisioningLogEntry[] = [
      {
        at: '2026-11-23T21:40:00.000Z',
        cycleId: '20261123T2140-s123',
        kind: 'createUser',
        outcome: 'applied',
        email: 'jane@corp.example',
        tvUserId: 'u1000042',
        after: { displayName: 'Jane', active: true },
        message: 'created jane@corp.example as u1000042',
      },
      {
        at: '2026-11-23T21:41:00.500Z',
        cycleId: '20261123T2140-s123',
        kind: 'updateUser',
        outcome: 'applied',
        email: 'jane@corp.example',
        before: { displayName: 'Jane', active: true },
        after: { displayName: 'Jane Q. Doe' },
        message: 'updated jane@corp.example',
      },
      {
        at: '2026-11-23T21:42:00.000Z',
        cycleId: '20261123T2140-s123',
        kind: 'updateUser',
        outcome: 'failed',
        email: 'bob@corp.example',
        before: { displayName: 'Bob', active: false },
        after: { displayName: 'Bobby', active: true },
        failureClass: 'invalid',
        message: 'update bob: 400',
      },
      {
        at: '2026-11-23T21:43:00.000Z',
        cycleId: '20261123T2140-s123',
        kind: 'skipped',
        outcome: 'skipped',
        reason: 'source-read-incomplete',
        message: 'no e-mail',
      },
      {
        at: '2026-11-23T21:44:00.000Z',
        cycleId: '20261123T2140-s123',
        kind: 'reactivateUser',
        outcome: 'cancelled',
        email: 'al@corp.example',
        adopted: true,
        before: { displayName: 'Al', active: false },
        after: { active: true },
        message: 'cancelled',
      },
    ];
    entries.push(
      {
        at: '2026-11-23T21:45:00.000Z',
        cycleId: 'c2',
        kind: 'renameGroup',
        outcome: 'applied',
        group: 'Sales EMEA',
        before: { displayName: 'Sales' },
        after: { displayName: 'Sales EMEA' },
        message: 'renamed',
      },
      { at: '2026-11-23T21:46:00.000Z', cycleId: 'c2', kind: 'skipped', outcome: 'skipped', sourceGroupId: 'g2', reason: 'group-name-taken', message: 'taken' },
    );
    expect(renderLogEntries(entries).split('\n')).toEqual([
      '2026-11-23T21:40:00Z  20261123T2140-s123  createUser          applied    jane@corp.example  created jane@corp.example as u1000042',
      '2026-11-23T21:41:00Z  20261123T2140-s123  updateUser          applied    jane@corp.example  updated jane@corp.example  (displayName "Jane" → "Jane Q. Doe")',
      '2026-11-23T21:42:00Z  20261123T2140-s123  updateUser          failed     bob@corp.example  invalid: update bob: 400  (displayName "Bob" → "Bobby", active false → true)',
      '2026-11-23T21:43:00Z  20261123T2140-s123  skipped             skipped    -  source-read-incomplete: no e-mail',
      '2026-11-23T21:44:00Z  20261123T2140-s123  reactivateUser      cancelled  al@corp.example  cancelled  (adopted)',
      '2026-11-23T21:45:00Z  c2  renameGroup         applied    group "Sales EMEA"  renamed  (displayName "Sales" → "Sales EMEA")',
      '2026-11-23T21:46:00Z  c2  skipped             skipped    group g2  group-name-taken: taken',
    ]);
    expect(renderLogEntries([])).toBe('');
  });
});

describe('writing the provisioning log', () => {
  it('sends entries that arrive while a write is under way together, each caller answered once its entry is kept', async () => {
    const log = newLog();
    const monitor = await redis.duplicate();
    const calls: string[] = [];
    // Redis may be shared: only the calls on this log's stream count.
    await monitor
      .monitor()
      .then((m) => m.on('monitor', (_time: string, args: string[]) => args.includes(log.key) && calls.push(String(args[0]).toLowerCase())));
    try {
      const results = Array.from(
        { length: 40 },
        (_, i): OperationResult => ({ ...created, key: `createUser.s-${i}`, sourceId: `s-${i}`, email: `p${i}@corp.example` }),
      );
      await Promise.all(results.map((r) => log.recordResult('c-batch', r, T0)));
      const scripts = calls.filter((c) => c === 'evalsha' || c === 'eval');
      // 40 writes at once: the first goes out alone, the 39 that waited go out together.
      expect(scripts.length).toBeLessThanOrEqual(3);
      expect(scripts.filter((c) => c === 'eval').length).toBeLessThanOrEqual(1);
      const found = await log.query({ cycleId: 'c-batch', limit: 100 });
      expect(found).toHaveLength(40);
      expect(new Set(found.map((e) => e.email))).toEqual(new Set(results.map((r) => r.email)));
    } finally {
      monitor.disconnect();
    }
  });

  it('writes outcomes recorded together in one call, one entry each, all at the same time', async () => {
    const log = newLog();
    const results = Array.from(
      { length: 30 },
      (_, i): OperationResult => ({ ...created, key: `createUser.s-${i}`, sourceId: `s-${i}`, email: `P${i}@corp.example` }),
    );
    const failedOne: OperationResult = { ...failed, key: 'deactivateUser.s-99' };
    const pipeline = vi.spyOn(redis, 'pipeline');
    try {
      await log.recordResults('c-many', [...results, failedOne], T0);
      // One pipeline holding one script call (up to 250 entries go in a call).
      expect(pipeline).toHaveBeenCalledTimes(1);
      expect(pipeline.mock.results[0]?.value.length).toBe(1);
    } finally {
      pipeline.mockRestore();
    }
    const found = await log.query({ cycleId: 'c-many', limit: 100 });
    expect(found).toHaveLength(31);
    expect(new Set(found.map((e) => e.at))).toEqual(new Set(['2026-11-23T21:40:00.000Z']));
    expect(found.find((e) => e.outcome === 'failed')).toMatchObject({ kind: 'deactivateUser', failureClass: 'forbidden', tvUserId: 'u7' });
    // Each is found by its own address.
    expect((await log.query({ email: 'p17@corp.example' })).map((e) => e.sourceId)).toEqual(['s-17']);
  });

  it('keeps the cycle id and an address the index holds once, and gives the entry back whole', async () => {
    const log = newLog();
    const lower = { ...created, email: 'jane@corp.example', message: 'created jane@corp.example as u1000042' };
    await log.recordResult('c-compact', lower, T0);
    const [raw] = await redis.xrange(log.key, '-', '+');
    const json = JSON.parse(raw![1][raw![1].indexOf('e') + 1]!) as Record<string, unknown>;
    expect(json.cycleId).toBeUndefined();
    expect(json.email).toBeUndefined();
    const [entry] = await log.query({ email: 'jane@corp.example' });
    expect(entry).toMatchObject({ cycleId: 'c-compact', email: 'jane@corp.example', tvUserId: 'u1000042', outcome: 'applied' });
    // An address in another case than the index's is kept as it was written.
    await log.recordResult('c-compact', created, T0);
    const [mixed] = await log.query({ email: 'Jane@Corp.example', limit: 1 });
    expect(mixed?.email).toBe('Jane@Corp.example');
  });
});
