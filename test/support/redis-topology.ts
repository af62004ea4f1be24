import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RedisServer, answersAt, commandAt, freePort } from './redis-server.js';
import { waitFor } from './wait.js';

/** Debian ships Sentinel as redis-sentinel; without it, redis-server runs as one with --sentinel. */
const haveRedisSentinel = spawnSync('redis-sentinel', ['--version'], { stdio: 'ignore' }).status === 0;

const at = (port: number) => `redis://127.0.0.1:${port}`;

/** A probe for waitFor that counts a refused or failed command as "not yet". */
function settled(probe: () => Promise<boolean>): () => Promise<boolean> {
  return () => probe().catch(() => false);
}

/** One command to the process on `port`, on a connection of its own. */
export function commandOn(port: number, name: string, ...args: (string | number)[]): Promise<unknown> {
  return commandAt(at(port), name, ...args);
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = once(child, 'exit');
  child.kill('SIGKILL');
  await gone;
}

/** A Sentinel on a free port, watching `master` under `name`; its config file is its own (Sentinel rewrites it). */
class SentinelProcess {
  private constructor(
    readonly port: number,
    private readonly child: ChildProcess,
  ) {}

  static async start(dir: string, name: string, masterPort: number, password?: string): Promise<SentinelProcess> {
    const port = await freePort();
    const conf = join(dir, `sentinel-${port}.conf`);
    writeFileSync(
      conf,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor ${name} 127.0.0.1 ${masterPort} 2`,
        // Short, so a test sees a failover within seconds.
        `sentinel down-after-milliseconds ${name} 1000`,
        `sentinel failover-timeout ${name} 5000`,
        `sentinel parallel-syncs ${name} 1`,
        ...(password ? [`sentinel auth-pass ${name} ${password}`] : []),
        '',
      ].join('\n'),
    );
    const child = haveRedisSentinel ? spawn('redis-sentinel', [conf], { stdio: 'ignore' }) : spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
    const sentinel = new SentinelProcess(port, child);
    await waitFor(`the Sentinel on port ${port} to answer`, () => answersAt(at(port)), 10_000);
    return sentinel;
  }

  stop(): Promise<void> {
    return stopChild(this.child);
  }
}

/**
 * A master, one replica and three Sentinels (quorum 2) on free ports, all of the test's own and
 * without persistence. start() returns once the replica is in sync and every Sentinel knows the
 * replica and the other Sentinels, so a failover can happen.
 */
export class SentinelTopology {
  readonly name = 'tvsync-ha';

  private constructor(
    readonly master: RedisServer,
    readonly replica: RedisServer,
    readonly sentinels: SentinelProcess[],
    private readonly dir: string,
  ) {}

  /** `password`: the data nodes require it (the replica uses it towards the master, the Sentinels towards both). */
  static async start(opts: { password?: string } = {}): Promise<SentinelTopology> {
    const { password } = opts;
    const dir = mkdtempSync(join(tmpdir(), 'tvsync-sentinel-'));
    // A replica keeps the RDB of its first sync in its directory: the topology's, not the working directory.
    const master = await RedisServer.start({ args: ['--dir', dir], ...(password ? { password } : {}) });
    const replica = await RedisServer.start({
      args: ['--dir', dir, '--replicaof', '127.0.0.1', String(master.port), ...(password ? ['--masterauth', password] : [])],
      ...(password ? { password } : {}),
    });
    const sentinels: SentinelProcess[] = [];
    const topology = new SentinelTopology(master, replica, sentinels, dir);
    try {
      for (let i = 0; i < 3; i++) sentinels.push(await SentinelProcess.start(dir, topology.name, master.port, password));
      await waitFor(
        'the replica to be in sync',
        settled(async () => /master_link_status:up/.test(String(await replica.command('INFO', 'replication')))),
        30_000,
      );
      for (const sentinel of sentinels) {
        await waitFor(
          `the Sentinel on ${sentinel.port} to know the replica and the other Sentinels`,
          settled(async () => {
            const replicas = (await commandOn(sentinel.port, 'SENTINEL', 'REPLICAS', topology.name)) as unknown[];
            const others = (await commandOn(sentinel.port, 'SENTINEL', 'SENTINELS', topology.name)) as unknown[];
            return replicas.length === 1 && others.length === 2;
          }),
          30_000,
        );
      }
      return topology;
    } catch (err) {
      await topology.stop();
      throw err;
    }
  }

  /** The Sentinels as tvsync's config names them. */
  get nodes(): string[] {
    return this.sentinels.map((s) => `127.0.0.1:${s.port}`);
  }

  /** The port of the master every Sentinel names now. */
  async masterPort(): Promise<number | undefined> {
    const ports = await Promise.all(
      this.sentinels.map(async (s) => {
        const addr = (await commandOn(s.port, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', this.name).catch(() => null)) as [string, string] | null;
        return addr ? Number(addr[1]) : undefined;
      }),
    );
    return ports.every((p) => p === ports[0]) ? ports[0] : undefined;
  }

  /** Kills the master as a crash would, and waits until the Sentinels have promoted the replica and it takes writes. */
  async failOver(): Promise<void> {
    await this.master.kill();
    await waitFor(
      'the Sentinels to name the replica as master',
      settled(async () => (await this.masterPort()) === this.replica.port),
      60_000,
    );
    await waitFor(
      'the promoted replica to take writes',
      settled(async () => /role:master/.test(String(await this.replica.command('INFO', 'replication')))),
      30_000,
    );
  }

  async stop(): Promise<void> {
    await Promise.all(this.sentinels.map((s) => s.stop()));
    await Promise.all([this.master.kill(), this.replica.kill()]);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A Redis Cluster of `count` masters (no replicas) on free ports, the slots split evenly. */
export class ClusterTopology {
  private constructor(
    readonly masters: RedisServer[],
    private readonly dir: string,
  ) {}

  static async start(count = 3): Promise<ClusterTopology> {
    const dir = mkdtempSync(join(tmpdir(), 'tvsync-cluster-'));
    const masters: RedisServer[] = [];
    const topology = new ClusterTopology(masters, dir);
    try {
      const busPorts: number[] = [];
      for (let i = 0; i < count; i++) {
        // The bus port is named: the default (port + 10000) may lie beyond 65535 for an ephemeral port.
        const bus = await freePort();
        busPorts.push(bus);
        masters.push(
          await RedisServer.start({
            args: ['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${i}.conf`), '--cluster-port', String(bus), '--dir', dir],
          }),
        );
      }
      // By hand rather than with redis-cli --cluster create: the slots split evenly, then every node meets the first.
      const SLOTS = 16384;
      for (const [i, master] of masters.entries()) {
        const from = Math.floor((i * SLOTS) / count);
        const to = Math.floor(((i + 1) * SLOTS) / count);
        await master.command('CLUSTER', 'ADDSLOTS', ...Array.from({ length: to - from }, (_, k) => from + k));
        if (i > 0) await masters[0]!.command('CLUSTER', 'MEET', '127.0.0.1', master.port, busPorts[i]!);
      }
      for (const master of masters) {
        await waitFor(
          `the node on ${master.port} to see the cluster ok`,
          settled(async () => /cluster_state:ok/.test(String(await master.command('CLUSTER', 'INFO')))),
          30_000,
        );
      }
      return topology;
    } catch (err) {
      await topology.stop();
      throw err;
    }
  }

  /** The masters as tvsync's config names them. */
  get nodes(): string[] {
    return this.masters.map((m) => `127.0.0.1:${m.port}`);
  }

  /** The port of the master that serves `slot`. */
  async masterOf(slot: number): Promise<number | undefined> {
    const ranges = (await this.masters[0]!.command('CLUSTER', 'SLOTS')) as [number, number, [string, number, ...unknown[]], ...unknown[]][];
    const range = ranges.find(([from, to]) => slot >= from && slot <= to);
    return range?.[2][1];
  }

  /** Every key on every master whose name starts with `prefix`. */
  async keysUnder(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    for (const master of this.masters) {
      let cursor = '0';
      do {
        const [next, found] = (await master.command('SCAN', cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)) as [string, string[]];
        cursor = next;
        keys.push(...found);
      } while (cursor !== '0');
    }
    return keys;
  }

  async slotOf(key: string): Promise<number> {
    return Number(await this.masters[0]!.command('CLUSTER', 'KEYSLOT', key));
  }

  async stop(): Promise<void> {
    await Promise.all(this.masters.map((m) => m.kill()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
