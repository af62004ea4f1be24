import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/observe/log.js';
import { Daemon } from '../../src/runtime/daemon.js';
import { Observability } from '../../src/runtime/observability.js';
import { connectRedis, openRedis } from '../../src/runtime/redis.js';
import { dropPrefix } from '../../src/store/drop-prefix.js';
import { runCli } from '../support/cli.js';
import { provisioned, runCycle } from '../support/cycle.js';
import { TOKEN, people, startEmulator, writeExport } from '../support/fixtures.js';
import { NO_REDIS_SERVER, haveRedisServer } from '../support/redis-server.js';
import { ClusterTopology } from '../support/redis-topology.js';
import { FAST } from '../support/runtime.js';
import { waitFor } from '../support/wait.js';

// Names whose hash tags fall in different thirds of the slots, so on three masters they live apart.
const SYNCS = { alpha: people(30, 60_000), beta: people(25, 70_000) };

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe.skipIf(!haveRedisServer)(`a Redis Cluster of three masters${NO_REDIS_SERVER}`, () => {
  it('runs two syncs, each in one slot of its own, on different masters', async () => {
    const cluster = await ClusterTopology.start(3);
    cleanups.push(() => cluster.stop());
    const alphaTv = await startEmulator();
    cleanups.push(() => alphaTv.emulator.stop());
    const betaTv = await startEmulator();
    cleanups.push(() => betaTv.emulator.stop());
    const sync = (name: string, users: typeof SYNCS.alpha, baseUrl: string) => `
  - name: ${name}
    schedule: { every: 1h }
    source: { type: file, path: ${writeExport(users, [{ id: `g-${name}`, name: `Team ${name}`, members: users.slice(0, 5).map((u) => u.id) }])}, settle: 0s }
    target: { baseUrl: ${baseUrl}, token: "\${T}", requestsPerSecond: 1000, concurrency: 4 }`;
    const text = `redis:
  cluster: { nodes: [${cluster.nodes.join(', ')}] }
  prefix: hc
log: { level: warn }
syncs:${sync('alpha', SYNCS.alpha, alphaTv.baseUrl)}${sync('beta', SYNCS.beta, betaTv.baseUrl)}
`;
    const configFile = join(mkdtempSync(join(tmpdir(), 'tvsync-cluster-config-')), 'tvsync.yaml');
    writeFileSync(configFile, text);
    const config = parseConfig(text, { env: { T: TOKEN } });
    const lines: string[] = [];
    const log = createLogger({ level: 'info', destination: { write: (line: string) => void lines.push(line) } });
    const observeRedis = connectRedis(config.redis, 'producer');
    cleanups.push(async () => observeRedis.disconnect());
    const observability = new Observability(config, observeRedis, log);
    const daemon = await Daemon.start(config, log, { scheduler: false, worker: true, runtime: FAST, ...observability.hooks() });
    cleanups.push(() => daemon.stop());

    const [alpha, beta] = await Promise.all([runCycle(daemon, 'alpha'), runCycle(daemon, 'beta')]);
    expect(alpha.outcome).toBe('succeeded');
    expect(beta.outcome).toBe('succeeded');
    expect(provisioned(alphaTv.emulator).map((u) => u.userName)).toEqual(SYNCS.alpha.map((u) => u.email).sort());
    expect(provisioned(betaTv.emulator).map((u) => u.userName)).toEqual(SYNCS.beta.map((u) => u.email).sort());
    // The provisioning log (a stream and its index, written by one script) and readiness work on the Cluster.
    // The log records an outcome alongside the cycle's own record of it: the last may come a moment after the report.
    const created = await waitFor('every create logged', async () => {
      const entries = (await observability.provisioningLog('alpha').query({ limit: 1000 })).filter((e) => e.kind === 'createUser' && e.outcome === 'applied');
      return entries.length >= SYNCS.alpha.length && entries;
    });
    expect(created.map((e) => e.email).sort()).toEqual(SYNCS.alpha.map((u) => u.email).sort());
    await waitFor('a beta create logged', async () => {
      const first = await observability.provisioningLog('beta').query({ email: SYNCS.beta[0]!.email });
      return first.some((e) => e.kind === 'createUser');
    });
    expect((await observability.readiness(daemon)).ready).toBe(true);
    // A second cycle reads the links and plans nothing: the state lived through.
    const again = await runCycle(daemon, 'alpha');
    expect(again.outcome).toBe('succeeded');
    expect(again.summary?.operations.createUser).toBe(0);
    expect(again.summary?.unchanged).toBe(SYNCS.alpha.length);

    // The CLI, as its own process, works on the Cluster: a cycle with --once, and the provisioning log.
    const once = await runCli(['run', '--once', '--sync', 'beta', '--config', configFile], { T: TOKEN }, 120_000);
    expect(once.code, once.stderr).toBe(0);
    const logged = await runCli(['log', '--sync', 'alpha', '--user', SYNCS.alpha[3]!.email!, '--json', '--config', configFile], { T: TOKEN });
    expect(logged.code, logged.stderr).toBe(0);
    expect(logged.stdout).toContain(SYNCS.alpha[3]!.email!);
    expect(logged.stdout).toContain('createUser');

    // Every key of a sync, its queues' included, hashes to one slot; the two syncs' slots sit on different masters.
    const slots = new Map<string, Set<number>>();
    for (const key of await cluster.keysUnder('hc:')) {
      const name = /\{(alpha|beta)\}/.exec(key)?.[1];
      expect(name, `the key ${key} carries a sync's hash tag`).toBeDefined();
      const set = slots.get(name!) ?? new Set<number>();
      set.add(await cluster.slotOf(key));
      slots.set(name!, set);
    }
    const keys = await cluster.keysUnder('hc:');
    expect(keys).toContain('hc:sync:{alpha}:links');
    expect(keys.some((k) => k.startsWith('hc:{alpha}:cycles-alpha:'))).toBe(true);
    expect(keys.some((k) => k.startsWith('hc:{beta}:operations-beta:'))).toBe(true);
    expect([...(slots.get('alpha') ?? [])]).toHaveLength(1);
    expect([...(slots.get('beta') ?? [])]).toHaveLength(1);
    const [alphaSlot] = [...slots.get('alpha')!];
    const [betaSlot] = [...slots.get('beta')!];
    expect(await cluster.masterOf(alphaSlot!)).not.toBe(await cluster.masterOf(betaSlot!));
    // No command met a key of another slot (CROSSSLOT) nor any other Redis error.
    expect(lines.filter((l) => (JSON.parse(l) as { level: number }).level >= 50)).toEqual([]);

    // The one-shot connection of the CLI commands reaches the Cluster too, and clearing the prefix visits every master.
    const cli = await openRedis(config.redis, 5000);
    try {
      expect(await cli.hlen('hc:sync:{beta}:links')).toBe(SYNCS.beta.length);
      await daemon.stop();
      await dropPrefix(cli, config.redis.prefix);
    } finally {
      cli.disconnect();
    }
    expect(await cluster.keysUnder('hc:')).toEqual([]);
  }, 300_000);
});
