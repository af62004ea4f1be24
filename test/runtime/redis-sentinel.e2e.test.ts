import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/observe/log.js';
import type { CycleReport } from '../../src/plan/report.js';
import { Daemon } from '../../src/runtime/daemon.js';
import { schedulerId } from '../../src/runtime/queues.js';
import { openRedis, RedisUnavailable } from '../../src/runtime/redis.js';
import { provisioned } from '../support/cycle.js';
import { TOKEN, people, startEmulator, writeExport } from '../support/fixtures.js';
import { NO_REDIS_SERVER, haveRedisServer } from '../support/redis-server.js';
import { SentinelTopology } from '../support/redis-topology.js';
import { FAST } from '../support/runtime.js';
import { waitFor } from '../support/wait.js';

const USERS = people(80, 50_000);
const GROUP = { id: 'g-ha', name: 'HA Team', members: USERS.slice(0, 12).map((u) => u.id) };

/** A sync for configs whose redis section is the point. */
const SYNC = `syncs:
  - name: corp
    source: { type: file, path: ./export }
    target: { token: "\${T}" }
`;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe.skipIf(!haveRedisServer)(`Redis behind Sentinels failing over mid-cycle${NO_REDIS_SERVER}`, () => {
  it('the master killed during a cycle: tvsync follows the promoted replica, every user exists once, and the schedule goes on', async () => {
    const topology = await SentinelTopology.start();
    cleanups.push(() => topology.stop());
    // Slow enough that the first cycle is still writing when the master dies.
    const tv = await startEmulator({ latencyMs: 80 });
    cleanups.push(() => tv.emulator.stop());
    const config = parseConfig(
      `redis:
  sentinel: { name: ${topology.name}, nodes: [${topology.nodes.join(', ')}] }
  prefix: ha
syncs:
  - name: corp
    schedule: { every: 10s }
    source: { type: file, path: ${writeExport(USERS, [GROUP])}, settle: 0s }
    target: { baseUrl: ${tv.baseUrl}, token: "\${T}", requestsPerSecond: 1000, concurrency: 2 }
`,
      { env: { T: TOKEN } },
    );
    const lines: string[] = [];
    const log = createLogger({ level: 'info', destination: { write: (line: string) => void lines.push(line) } });
    const daemon = await Daemon.start(config, log, { scheduler: true, worker: true, runtime: { ...FAST, stateCheckMs: 1000 } });
    cleanups.push(() => daemon.stop());
    const reports = (): Promise<CycleReport[]> => daemon.runtime('corp').store.reports();

    // The scheduler's first cycle starts at once; the master dies while it creates users.
    await waitFor('the first cycle to create users', () => provisioned(tv.emulator).length >= 15, 60_000);
    expect(provisioned(tv.emulator).length).toBeLessThan(USERS.length);
    expect(await topology.masterPort()).toBe(topology.master.port);
    await topology.failOver();
    const promotedAt = Date.now();

    await waitFor('every user to be provisioned after the failover', () => provisioned(tv.emulator).length >= USERS.length, 120_000);
    // A cycle of the schedule that started after the failover finished: the schedule survived it.
    const after = await waitFor(
      'a scheduled cycle after the failover to succeed',
      async () => (await reports()).find((r) => r.trigger === 'schedule' && Date.parse(r.startedAt) > promotedAt && r.outcome === 'succeeded'),
      120_000,
    );
    expect(after.summary?.operations.createUser).toBe(0);

    // Nothing lost, nothing twice.
    const users = provisioned(tv.emulator);
    expect(users.map((u) => u.userName)).toEqual(USERS.map((u) => u.email).sort());
    expect(new Set(users.map((u) => u.userName)).size).toBe(USERS.length);
    expect(users.every((u) => u.active)).toBe(true);
    const groups = tv.emulator.dump().groups.filter((g) => g.displayName === GROUP.name);
    expect(groups).toHaveLength(1);
    expect(groups[0]!.memberIds).toHaveLength(GROUP.members.length);

    // The promoted replica holds the schedule and the queue setting, and tvsync writes there.
    const { cycles } = daemon.runtime('corp').queues;
    expect((await cycles.getJobScheduler(schedulerId('corp')))?.every).toBe(10_000);
    expect(await cycles.getGlobalConcurrency()).toBe(1);
    // Every IdP user is linked, on the promoted replica, to the one TeamViewer user of its address.
    const links = new Map(Object.entries(await daemon.redis.hgetall('ha:sync:corp:links')));
    expect(Number(await topology.replica.command('HLEN', 'ha:sync:corp:links'))).toBe(USERS.length);
    const tvIdOf = new Map(tv.emulator.dump().users.map((u) => [u.userName, u.id]));
    expect(USERS.filter((u) => links.get(u.id) !== tvIdOf.get(u.email ?? ''))).toEqual([]);
    // A command's one-shot connection asks the Sentinels too, and finds the promoted master.
    const cli = await openRedis(config.redis, 5000);
    try {
      expect(await cli.hlen('ha:sync:corp:links')).toBe(USERS.length);
      expect(await cli.set('ha:written-by-a-command', '1')).toBe('OK');
      await cli.del('ha:written-by-a-command');
    } finally {
      cli.disconnect();
    }
    // The failover was one outage in the log, which ended.
    const messages = lines.map((l) => (JSON.parse(l) as { msg: string }).msg);
    expect(messages).toContain('Redis is unreachable; retrying until it answers');
    await waitFor('the outage to be logged as over', () => lines.some((l) => /Redis answers again/.test(l)), 30_000);
  }, 300_000);

  it('data nodes with a password: the right one connects, a wrong one is named without being shown', async () => {
    const topology = await SentinelTopology.start({ password: 'Hq7vX2pLm9' });
    cleanups.push(() => topology.stop());
    const configWith = (password: string) =>
      parseConfig(`redis:\n  sentinel: { name: ${topology.name}, nodes: [${topology.nodes.join(', ')}] }\n  password: \${PW}\n${SYNC}`, {
        env: { PW: password, T: TOKEN },
      }).redis;

    const redis = await openRedis(configWith('Hq7vX2pLm9'), 5000);
    try {
      expect(await redis.ping()).toBe('PONG');
    } finally {
      redis.disconnect();
    }
    const refused = await openRedis(configWith('Wr0ngPassw0rd'), 5000).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(refused).toBeInstanceOf(RedisUnavailable);
    expect((refused as RedisUnavailable).kind).toBe('password');
    expect((refused as RedisUnavailable).message).toMatch(/^Redis at master "tvsync-ha" of Sentinels .* refused the user name or password in redis.password/);
    expect((refused as RedisUnavailable).message).not.toContain('Wr0ngPassw0rd');
  }, 120_000);
});
