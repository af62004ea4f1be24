import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { Redis } from 'ioredis';

/** Tests that stop, restart or flush Redis run their own redis-server; without one they are skipped. */
export const haveRedisServer = spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
/** Appended to the name of a skipped suite, so the run says why. */
export const NO_REDIS_SERVER = haveRedisServer ? '' : ' (skipped: redis-server is not on PATH)';

/** Starts `server` on a free port of 127.0.0.1 and gives the port. */
export async function listenLocally(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  const port = await listenLocally(server);
  server.close();
  return port;
}

/** Whether a Redis (or Sentinel) at `url` answers PING, on a one-shot connection. */
export async function answersAt(url: string): Promise<boolean> {
  const client = new Redis(url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
  client.on('error', () => {});
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

/** One command to the Redis (or Sentinel) at `url`, on a connection of its own. */
export async function commandAt(url: string, name: string, ...args: (string | number)[]): Promise<unknown> {
  const client = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: () => null });
  client.on('error', () => {});
  try {
    return await client.call(name, ...args);
  } finally {
    client.disconnect();
  }
}

/** A redis-server of the test's own on a free port, without persistence: a restart comes back empty. */
export class RedisServer {
  private child: ChildProcess | undefined;

  private constructor(
    readonly port: number,
    private readonly args: string[],
    private readonly password?: string,
  ) {}

  static async start(opts: { args?: string[]; password?: string } = {}): Promise<RedisServer> {
    const server = new RedisServer(await freePort(), [...(opts.args ?? []), ...(opts.password ? ['--requirepass', opts.password] : [])], opts.password);
    await server.up();
    return server;
  }

  get url(): string {
    return `redis://${this.password ? `:${this.password}@` : ''}127.0.0.1:${this.port}`;
  }

  /** Starts the process (again) and waits until it answers. */
  async up(): Promise<void> {
    this.child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...this.args], {
      stdio: 'ignore',
    });
    for (let i = 0; i < 100; i++) {
      if (await answersAt(this.url)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`redis-server on port ${this.port} did not start`);
  }

  /** Kills the process as a crash would (SIGKILL) and waits until it is gone. */
  async kill(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = once(child, 'exit');
    child.kill('SIGKILL');
    await gone;
  }

  /** One command on a connection of its own. */
  command(name: string, ...args: (string | number)[]): Promise<unknown> {
    return commandAt(this.url, name, ...args);
  }
}

/** Something on a port that accepts connections and never answers: a Redis that hangs. */
export async function startSilentServer(): Promise<{ url: string; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('data', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  const port = await listenLocally(server);
  return {
    url: `redis://127.0.0.1:${port}`,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
