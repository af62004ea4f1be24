import type { Job, Queue } from 'bullmq';
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import type { TvUser } from '../../src/model/teamviewer.js';
import type { SyncConfig } from '../../src/config/schema.js';
import type { CreateUserOperation } from '../../src/plan/types.js';
import { type OperationBatchJobData, type OperationDeps, StopFlagCache, processOperationBatch } from '../../src/runtime/operation-worker.js';
import { OutcomeLedger } from '../../src/runtime/outcome-ledger.js';
import { DEFAULT_RUNTIME } from '../../src/runtime/queues.js';
import type { SyncSides } from '../../src/runtime/prepare.js';
import { CycleStore } from '../../src/store/cycle-store.js';
import { RedisSyncState } from '../../src/store/sync-state.js';
import type { TeamViewerPort } from '../../src/teamviewer/port.js';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.js';

const redis = new Redis(REDIS_URL);
const prefixes: string[] = [];
afterAll(async () => {
  await Promise.all(prefixes.map(dropPrefix));
  await redis.quit();
});

const create = (i: number, reason: CreateUserOperation['reason'] = 'new-in-scope'): { key: string; op: CreateUserOperation } => ({
  key: `createUser.e${i}`,
  op: {
    kind: 'createUser',
    sourceId: `e${i}`,
    email: `user${i}@corp.example`,
    user: { userName: `user${i}@corp.example`, displayName: `User ${i}`, active: true },
    reason,
    message: `create user${i}@corp.example`,
  },
});

/** A TeamViewer that keeps its users and counts the creates it was sent. */
function teamviewer() {
  const users = new Map<string, TvUser>();
  let creates = 0;
  const client = {
    findUserByEmail: async (email: string) => users.get(email),
    createUser: async (user: { userName: string; displayName: string; active: boolean }) => {
      creates++;
      const created: TvUser = { id: `tv-${user.userName}`, userName: user.userName, email: user.userName, displayName: user.displayName, active: true };
      users.set(user.userName, created);
      return created;
    },
    updateUser: async (id: string) => [...users.values()].find((u) => u.id === id) as TvUser,
  };
  return { client: client as unknown as TeamViewerPort, creates: () => creates };
}

/** A batch job as the worker sees it: its data changes through updateData, as BullMQ's does. */
function batchJob(batch: { key: string; op: CreateUserOperation }[]) {
  const job = {
    data: { cycleId: 'cycle-1', batch } as OperationBatchJobData,
    attemptsMade: 0,
    attemptsStarted: 1,
    stalledCounter: 0,
    updateData: async (data: OperationBatchJobData) => {
      job.data = data;
    },
  };
  return job;
}

function setup(tv: TeamViewerPort) {
  const prefix = testPrefix('operation-outcomes');
  prefixes.push(prefix);
  const store = new CycleStore(redis, prefix, 'corp');
  const state = new RedisSyncState(redis, prefix, 'corp');
  const sides = { client: tv, state, now: Date.now, sync: { groups: { batchSize: 100 }, fastLane: { window: 3_600_000 } } as unknown as SyncConfig };
  const deps: OperationDeps = {
    sides: sides as unknown as SyncSides,
    store,
    stopFlags: new StopFlagCache(store),
    queue: {} as Queue,
    options: DEFAULT_RUNTIME,
    log: pino({ level: 'silent' }),
    outcomes: new OutcomeLedger({ store, state }, { lingerMs: 5, maxPending: 100 }),
  };
  return { deps, store, state };
}

describe('a batch whose outcomes could not be written', () => {
  it('fails, marks its operations maybe-applied, and its retry finds the users instead of creating them again', async () => {
    const tv = teamviewer();
    const { deps, store } = setup(tv.client);
    const job = batchJob([create(1), create(2)]);
    const recordResults = store.recordResults.bind(store);
    store.recordResults = async () => {
      throw new Error('Redis refused the write');
    };
    await expect(processOperationBatch(job as unknown as Job<OperationBatchJobData>, deps)).rejects.toThrow('Redis refused the write');
    expect(tv.creates()).toBe(2);
    expect(job.data.maybeApplied?.sort()).toEqual(['createUser.e1', 'createUser.e2']);

    store.recordResults = recordResults;
    job.attemptsMade = 1;
    job.attemptsStarted = 2;
    await processOperationBatch(job as unknown as Job<OperationBatchJobData>, deps);
    expect(tv.creates()).toBe(2);
    const results = await store.results('cycle-1');
    expect(results.map((r) => [r.key, r.status, r.adopted]).sort()).toEqual([
      ['createUser.e1', 'applied', true],
      ['createUser.e2', 'applied', true],
    ]);
  });

  it('marks a create that went through before a later step failed, so its retry looks first', async () => {
    const tv = teamviewer();
    const { deps, state } = setup(tv.client);
    state.clearOutsideCompany = async () => {
      throw new Error('Redis went away');
    };
    const job = batchJob([create(3, 'retry-after-outside-conflict')]);
    await expect(processOperationBatch(job as unknown as Job<OperationBatchJobData>, deps)).rejects.toThrow('Redis went away');
    expect(tv.creates()).toBe(1);
    expect(job.data.maybeApplied).toEqual(['createUser.e3']);
  });
});
