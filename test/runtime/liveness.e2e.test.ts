import { setTimeout as sleep } from 'node:timers/promises';
import { queuePrefix } from '../../src/store/keys.js';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import type { TvsyncConfig } from '../../src/config/schema.js';
import { LIVENESS_REASONS } from '../../src/observe/http.js';
import { Daemon, type DaemonOptions } from '../../src/runtime/daemon.js';
import { closeQueues, openQueues, queueNames, schedulerId } from '../../src/runtime/queues.js';
import { requestCycle } from '../../src/runtime/trigger.js';
import { runCycle } from '../support/cycle.js';
import { TOKEN, people, silentLog, startEmulator, writeExport } from '../support/fixtures.js';
import { startFreezingProxy } from '../support/freezing-proxy.js';
import { NO_REDIS_SERVER, RedisServer, haveRedisServer } from '../support/redis-server.js';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.js';
import { FAST } from '../support/runtime.js';
import { waitFor } from '../support/wait.js';

const MINUTE = 60_000;
const prefixes: string[] = [];
const daemons: Daemon[] = [];
const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  await Promise.all(daemons.splice(0).map((d) => d.stop()));
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(async () => {
  await Promise.all(prefixes.map(dropPrefix));
});

/** Two file-source syncs against one emulator, every 10 min (margin: the default 2 min), unless `extra` says otherwise. */
async function configFor(name: string, opts: { url?: string; runtime?: string } = {}): Promise<TvsyncConfig> {
  const prefix = testPrefix(name);
  prefixes.push(prefix);
  const tv = await startEmulator();
  cleanups.push(() => tv.emulator.stop());
  const sync = (sync: string, from: number) => `
  - name: ${sync}
    source: { type: file, path: ${writeExport(people(3, from))}, settle: 0s }
    target: { baseUrl: ${tv.baseUrl}, token: "\${T}", requestsPerSecond: 1000 }
    schedule: { every: 10m }
    groups: { enabled: false }`;
  return parseConfig(
    `redis: { url: "${opts.url ?? REDIS_URL}", prefix: ${prefix} }
${opts.runtime ?? ''}
syncs:${sync('corp', 0)}${sync('lab', 100)}
`,
    { env: { T: TOKEN } },
  );
}

async function start(config: TvsyncConfig, opts: Pick<DaemonOptions, 'scheduler' | 'worker'>): Promise<Daemon> {
  const daemon = await Daemon.start(config, silentLog, { ...opts, runtime: FAST });
  daemons.push(daemon);
  return daemon;
}

async function nextDue(daemon: Daemon, sync: string): Promise<number> {
  const scheduler = await daemon.runtime(sync).queues.cycles.getJobScheduler(schedulerId(sync));
  if (!scheduler?.next) throw new Error(`no scheduler for ${sync}`);
  return scheduler.next;
}

/** The daemon's own BullMQ worker of a sync's queue, to close behind its back. */
function workerOf(daemon: Daemon, sync: string, queue: string): Worker {
  const watch = daemon.watchedWorkers.find((w) => w.sync === sync && w.queue === queue);
  if (!watch) throw new Error(`no ${queue} worker of ${sync}`);
  return watch.worker as Worker;
}

describe('liveness of the schedule (a process with the scheduler role)', () => {
  it('is live while a due cycle is within its margin, and fails naming the sync once it is not started past it', async () => {
    const config = await configFor('live-overdue');
    // No worker anywhere: the due cycle waits for ever.
    const scheduler = await start(config, { scheduler: true, worker: false });
    const due = Math.max(await nextDue(scheduler, 'corp'), await nextDue(scheduler, 'lab'));
    expect(await scheduler.live(due)).toEqual({ live: true, problems: [] });
    expect(await scheduler.live(due + 2 * MINUTE - 1000)).toEqual({ live: true, problems: [] });

    const late = await scheduler.live(due + 2 * MINUTE + 1000);
    expect(late).toEqual({
      live: false,
      problems: [
        { sync: 'corp', queue: 'cycles', reason: LIVENESS_REASONS.overdue },
        { sync: 'lab', queue: 'cycles', reason: LIVENESS_REASONS.overdue },
      ],
    });
  });

  it('takes runtime.livenessMargin when set', async () => {
    const config = await configFor('live-margin', { runtime: 'runtime: { livenessMargin: 30s }' });
    const scheduler = await start(config, { scheduler: true, worker: false });
    const due = await nextDue(scheduler, 'corp');
    expect((await scheduler.live(due + 29_000)).live).toBe(true);
    expect((await scheduler.live(due + 31_000)).problems).toContainEqual({ sync: 'corp', queue: 'cycles', reason: LIVENESS_REASONS.overdue });
  });

  it('does not count a cycle that runs long as not started', async () => {
    const config = await configFor('live-long-cycle');
    const scheduler = await start(config, { scheduler: true, worker: false });
    // A worker elsewhere that holds the cycle of corp until released: the next one waits behind it.
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let took = false;
    const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    const elsewhere = new Worker(
      queueNames('corp').cycles,
      async () => {
        took = true;
        await held;
      },
      { connection, prefix: queuePrefix(config.redis.prefix, 'corp') },
    );
    cleanups.push(async () => {
      release();
      await elsewhere.close();
      connection.disconnect();
    });
    await waitFor('the cycle to be taken elsewhere', () => took);
    const farLater = (await nextDue(scheduler, 'corp')) + 60 * MINUTE;
    expect((await scheduler.live(farLater)).problems.filter((p) => p.sync === 'corp')).toEqual([]);

    release();
    await waitFor('the long cycle to end', async () => (await scheduler.runtime('corp').queues.cycles.getActiveCount()) === 0);
    await elsewhere.close();
    expect((await scheduler.live(farLater)).problems.filter((p) => p.sync === 'corp')).toEqual([
      { sync: 'corp', queue: 'cycles', reason: LIVENESS_REASONS.overdue },
    ]);
  });
});

describe('liveness of the workers', () => {
  it('is live with scheduler and workers after start and after cycles, and fails when a worker is closed behind its back', async () => {
    const config = await configFor('live-all');
    const daemon = await start(config, { scheduler: true, worker: true });
    expect(await daemon.live()).toEqual({ live: true, problems: [] });
    const report = await runCycle(daemon, 'corp');
    expect(report.outcome).toBe('succeeded');
    expect(await daemon.live()).toEqual({ live: true, problems: [] });

    await workerOf(daemon, 'lab', 'operations').close();
    expect(await daemon.live()).toEqual({ live: false, problems: [{ sync: 'lab', queue: 'operations', reason: LIVENESS_REASONS.stopped }] });

    // Stopping on purpose is not a fault.
    await daemon.stop();
    expect(await daemon.live()).toEqual({ live: true, problems: [] });
  });

  it('judges a worker-only process by its workers alone: it has no schedule to keep', async () => {
    const config = await configFor('live-worker-only');
    // A scheduler elsewhere set the schedule up and went away.
    const scheduler = await Daemon.start(config, silentLog, { scheduler: true, worker: false, runtime: FAST });
    const due = await nextDue(scheduler, 'corp');
    await scheduler.stop();

    const worker = await start(config, { scheduler: false, worker: true });
    expect(worker.watchedWorkers.map((w) => `${w.sync}/${w.queue}`)).toEqual([
      'corp/cycles',
      'corp/operations',
      'corp/changes',
      'lab/cycles',
      'lab/operations',
      'lab/changes',
    ]);
    // It takes the due cycles, and a day later (no new cycle was scheduled by then, as no clock moved) nothing is its fault.
    await waitFor('the due cycles to finish', async () => {
      const counts = await worker.runtime('corp').queues.cycles.getJobCounts('completed');
      return (counts.completed ?? 0) > 0;
    });
    expect(await worker.live(due + 24 * 60 * MINUTE)).toEqual({ live: true, problems: [] });

    await workerOf(worker, 'corp', 'cycles').close();
    expect((await worker.live()).problems).toEqual([{ sync: 'corp', queue: 'cycles', reason: LIVENESS_REASONS.stopped }]);
  });

  it('fails when a worker takes nothing while a job waits, its blocking connection silent after a fail-over', async () => {
    const server = new URL(REDIS_URL);
    const proxy = await startFreezingProxy(Number(server.port || 6379));
    cleanups.push(() => proxy.close());
    const config = await configFor('live-stuck', { url: proxy.url });
    const daemon = await start(config, { scheduler: false, worker: true });
    const waitingKey = `${queueNames('corp').cycles}:marker`;
    // The connection blocked on corp's cycle queue goes silent, and so does any new one (the old host is gone).
    proxy.freeze((command) => /bzpopmin/i.test(command) && command.includes(waitingKey));

    const redis = new Redis(REDIS_URL);
    const queues = openQueues('corp', redis, config.redis.prefix);
    cleanups.push(async () => {
      await closeQueues(queues);
      redis.disconnect();
    });
    await requestCycle(queues.cycles, 'corp', 'manual');
    // Longer than BullMQ's own watchdog on a blocking command (its block timeout plus a second).
    await sleep(8000);
    expect(await queues.cycles.getJobCounts('waiting', 'active')).toEqual({ waiting: 1, active: 0 });

    const firstLook = Date.now();
    expect(await daemon.live(firstLook)).toEqual({ live: true, problems: [] });
    expect(await daemon.live(firstLook + 2 * MINUTE - 1000)).toEqual({ live: true, problems: [] });
    expect(await daemon.live(firstLook + 2 * MINUTE + 1000)).toEqual({
      live: false,
      problems: [{ sync: 'corp', queue: 'cycles', reason: LIVENESS_REASONS.stuck }],
    });
    // The silent connections end here, so the daemon can stop (a stuck worker would hold its close for ever).
    await proxy.close();
  });

  it('does not count jobs held by a paused or rate-limited queue as a stall', async () => {
    const config = await configFor('live-held');
    const daemon = await start(config, { scheduler: false, worker: true });
    const { cycles, operations } = daemon.runtime('corp').queues;
    await cycles.pause();
    await requestCycle(cycles, 'corp', 'manual');
    // As a 429 pauses a sync's operations.
    await operations.rateLimit(10 * MINUTE);
    await operations.add('held', {});
    expect(await cycles.getJobCounts('waiting')).toEqual({ waiting: 1 });
    expect(await operations.getJobCounts('waiting')).toEqual({ waiting: 1 });

    const firstLook = Date.now();
    expect(await daemon.live(firstLook)).toEqual({ live: true, problems: [] });
    expect(await daemon.live(firstLook + 5 * MINUTE)).toEqual({ live: true, problems: [] });
  });
});

describe.runIf(haveRedisServer)(`liveness while Redis is away${NO_REDIS_SERVER}`, () => {
  it('stays live: Redis that does not answer is readiness, and a restart would not bring it back', async () => {
    const redis = await RedisServer.start();
    cleanups.push(() => redis.kill());
    const config = await configFor('live-redis-away', { url: redis.url });
    const daemon = await start(config, { scheduler: true, worker: true });
    await waitFor('the first scheduled cycles', async () => (await daemon.runtime('corp').store.reports(1)).length > 0);
    expect(await daemon.live()).toEqual({ live: true, problems: [] });

    await redis.kill();
    // Long enough for the workers to notice the lost connections and retry.
    await sleep(3000);
    expect(await daemon.live(Date.now() + 60 * MINUTE)).toEqual({ live: true, problems: [] });

    await redis.up();
    // Back without its data (no persistence): the state guard restores the schedule, and all is live again.
    await waitFor(
      'the schedule to be restored',
      async () =>
        (await daemon
          .runtime('corp')
          .queues.cycles.getJobScheduler(schedulerId('corp'))
          .catch(() => undefined)) ?? false,
    );
    expect(await daemon.live()).toEqual({ live: true, problems: [] });
  });
});
