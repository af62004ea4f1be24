import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { dropPrefix as dropKeysUnder } from '../src/store/drop-prefix.js';

export const BENCH_TOKEN = 'bench-token-0123456789';
export const REDIS_URL = process.env.TVSYNC_BENCH_REDIS ?? 'redis://127.0.0.1:6379';

/** The emulator in a process of its own, like a remote TeamViewer: its CPU is not the daemon's. */
export async function startEmulatorProcess(latencyMs: number, opts: { stateFile?: string; extraArgs?: readonly string[] } = {}) {
  const main = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
  const args = ['--import', 'tsx', main, 'emulator', '--port', '0', '--token', BENCH_TOKEN, '--owner', 'owner@bench.example', '--latency', String(latencyMs)];
  if (opts.stateFile) args.push('--state', opts.stateFile);
  args.push(...(opts.extraArgs ?? []));
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const baseUrl = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const match = /SCIM (http:\/\/\S+)/.exec(out);
      if (match?.[1]) resolve(match[1].replace(/,$/, ''));
    });
    child.once('exit', (code) => reject(new Error(`emulator exited with ${code}`)));
  });
  const admin = `${new URL(baseUrl).origin}/_emulator`;
  return {
    baseUrl,
    /** The emulator's real round trip (its latency switch plus its own processing and timer slack), from a bare HTTP client. */
    roundTripMs: async (samples = 50): Promise<number> => {
      const agent = new Agent({ keepAlive: true });
      const url = new URL(`${baseUrl}/Users?startIndex=1&count=1`);
      const get = () =>
        new Promise<void>((resolve, reject) => {
          const req = request(
            { host: url.hostname, port: url.port, path: `${url.pathname}${url.search}`, agent, headers: { authorization: `Bearer ${BENCH_TOKEN}` } },
            (res) => res.resume().on('end', resolve),
          );
          req.on('error', reject).end();
        });
      await get();
      const started = performance.now();
      for (let i = 0; i < samples; i++) await get();
      agent.destroy();
      return (performance.now() - started) / samples;
    },
    /** CPU the emulator process has used so far, from /proc (Linux; undefined elsewhere). */
    cpuMs: (): number | undefined => {
      try {
        // utime and stime, fields 14 and 15, in clock ticks of 10 ms (USER_HZ); the command name before them may hold spaces.
        const fields = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
        return (Number(fields[11]) + Number(fields[12])) * 10;
      } catch {
        return undefined;
      }
    },
    resetStats: async () => void (await fetch(`${admin}/reset-stats`, { method: 'POST' })),
    stats: async () =>
      (await (await fetch(`${admin}/stats`)).json()) as { requests: number; rateLimited: number; byRoute: Record<string, number>; filteredReads: number },
    stop: async () => {
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

export async function dropPrefix(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL);
  await dropKeysUnder(redis, prefix);
  await redis.quit();
}
