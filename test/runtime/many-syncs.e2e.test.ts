import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TvsyncConfig } from '../../src/config/schema.js';
import { Daemon } from '../../src/runtime/daemon.js';
import { requestCycle } from '../../src/runtime/trigger.js';
import type { CycleReport } from '../../src/plan/report.js';
import { TOKEN, silentLog, startEmulator } from '../support/fixtures.js';
import { tenantName, tenantsConfig } from '../support/many-syncs.js';
import { provisioned } from '../support/cycle.js';
import { NO_REDIS_SERVER, RedisServer, haveRedisServer } from '../support/redis-server.js';
import { FAST } from '../support/runtime.js';
import { waitFor } from '../support/wait.js';

const TENANTS = 20;

/** Clients connected to the test's own Redis, but the one asking. */
async function connections(redis: RedisServer): Promise<number> {
  const list = String(await redis.command('CLIENT', 'LIST'));
  return list.trim().split('\n').length - 1;
}

/** Each tenant's newest report, once every tenant has one. */
function allReports(daemon: Daemon): Promise<CycleReport[]> {
  return waitFor(
    'a report of every tenant',
    async () => {
      const reports = await Promise.all([...daemon.syncs.values()].map(async (s) => (await s.store.reports(1))[0]));
      return reports.every((r) => r !== undefined) && (reports as CycleReport[]);
    },
    120_000,
  );
}

describe.runIf(haveRedisServer)(`${TENANTS} tenants in one deployment${NO_REDIS_SERVER}`, () => {
  let redis: RedisServer;
  const emulators: Awaited<ReturnType<typeof startEmulator>>[] = [];
  let prefixCount = 0;

  beforeAll(async () => {
    redis = await RedisServer.start();
    for (let i = 0; i < TENANTS; i++) emulators.push(await startEmulator());
  });
  afterAll(async () => {
    await Promise.all(emulators.map((e) => e.emulator.stop()));
    await redis?.kill();
  });

  function config(fastLane: boolean): TvsyncConfig {
    return tenantsConfig(
      emulators.map((e) => e.baseUrl),
      { redisUrl: redis.url, prefix: `many${++prefixCount}`, token: TOKEN, fastLane },
    );
  }

  it('one process runs a cycle of each, with one blocking connection per worker and three shared ones', async () => {
    const before = await connections(redis);
    const daemon = await Daemon.start(config(true), silentLog, { scheduler: false, worker: true, runtime: FAST });
    try {
      // Per tenant: the cycle, operation and change-feed workers' blocking connections; per process:
      // the stores' commands, the queues' commands and the workers' commands.
      expect((await connections(redis)) - before).toBe(3 * TENANTS + 3);
      for (const name of daemon.syncs.keys()) await requestCycle(daemon.runtime(name).queues.cycles, name, 'once');
      const reports = await allReports(daemon);
      expect(reports.map((r) => [r.sync, r.outcome, r.operations.createUser.applied])).toEqual(
        Array.from({ length: TENANTS }, (_, i) => [tenantName(i), 'succeeded', 3]),
      );
      // Each tenant's people went to its own company.
      emulators.forEach((e, i) => {
        expect(provisioned(e.emulator).map((u) => u.userName)).toEqual([0, 1, 2].map((k) => `person${i * 1000 + k}@corp.example`));
      });
      expect(await daemon.live()).toEqual({ live: true, problems: [] });
    } finally {
      await daemon.stop();
    }
    expect(await connections(redis)).toBe(before);
  });

  it('a scheduler process and worker-only processes share the tenants; each is live by its own role', async () => {
    const cfg = config(false);
    const before = await connections(redis);
    const workers = [
      await Daemon.start(cfg, silentLog, { scheduler: false, worker: true, runtime: FAST }),
      await Daemon.start(cfg, silentLog, { scheduler: false, worker: true, runtime: FAST }),
    ];
    // Without the fast lane a tenant has two workers, so two blocking connections per process.
    expect((await connections(redis)) - before).toBe(2 * (2 * TENANTS + 3));
    const scheduler = await Daemon.start(cfg, silentLog, { scheduler: true, worker: false, runtime: FAST });
    try {
      // The first scheduled cycle of every tenant is due at once; the worker processes take them.
      const reports = await allReports(scheduler);
      expect(reports.map((r) => [r.sync, r.trigger, r.outcome])).toEqual(Array.from({ length: TENANTS }, (_, i) => [tenantName(i), 'schedule', 'succeeded']));
      const took = workers.map((w) => w.watchedWorkers.filter((watch) => watch.queue === 'cycles' && watch.pulse.lastTakenMs !== undefined).length);
      expect(took[0]! + took[1]!).toBe(TENANTS);
      for (const daemon of [scheduler, ...workers]) expect(await daemon.live()).toEqual({ live: true, problems: [] });
      // The scheduler process has no worker to watch; the worker processes have no schedule to keep.
      expect(scheduler.watchedWorkers).toEqual([]);
      expect((await workers[0]!.live(Date.now() + 24 * 3_600_000)).live).toBe(true);
    } finally {
      await Promise.all([scheduler, ...workers].map((d) => d.stop()));
    }
  });
});
