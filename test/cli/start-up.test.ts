import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * What a command loads: `tvsync --help` and the container's `tvsync healthcheck` (every 30 s) must
 * not pay for the SDKs, BullMQ, Redis and the logger the daemon needs (bench/startup.ts measures it).
 */

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const MODULE_LOG = fileURLToPath(new URL('../support/module-log.ts', import.meta.url));
const CONFIG_LOADER = pathToFileURL(fileURLToPath(new URL('../../src/config/load.ts', import.meta.url))).href;
const dir = mkdtempSync(join(tmpdir(), 'tvsync-start-up-'));
let server: Server;
let config: string;

beforeAll(async () => {
  server = createServer((_req, res) => res.end('{}'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  config = join(dir, 'tvsync.yaml');
  writeFileSync(
    config,
    `http: { port: ${(server.address() as AddressInfo).port} }\nsyncs:\n  - name: x\n    source: { type: file, path: . }\n    target: { token: "\${TVSYNC_TEST_TOKEN}" }\n`,
  );
});
afterAll(() => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

let runs = 0;
/** Runs node with these arguments; its exit code, output and the npm packages it loaded. */
async function loading(args: string[]): Promise<{ code: number | null; stdout: string; packages: string[] }> {
  const log = join(dir, `modules-${++runs}.log`);
  writeFileSync(log, '');
  const child = spawn(process.execPath, ['--import', 'tsx', '--import', MODULE_LOG, ...args], {
    env: { ...process.env, TVSYNC_MODULE_LOG: log, TVSYNC_TEST_TOKEN: 'test-token-0123456789' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  const names = readFileSync(log, 'utf8')
    .split('\n')
    .flatMap((url) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1] ?? []);
  return { code, stdout, packages: [...new Set(names)].sort() };
}

describe('start-up', () => {
  it('tvsync --help loads commander and no other package', async () => {
    const help = await loading([MAIN, '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('healthcheck');
    expect(help.packages).toEqual(['commander']);
  });

  it('tvsync healthcheck loads what loading the configuration loads, and commander: no logger, Redis, BullMQ or metrics', async () => {
    const configOnly = await loading(['--input-type=module', '-e', `await import(${JSON.stringify(CONFIG_LOADER)});`]);
    expect(configOnly.code).toBe(0);
    expect(configOnly.packages).toContain('zod');

    const health = await loading([MAIN, 'healthcheck', '--config', config]);
    expect(health.code).toBe(0);
    expect(health.stdout).toBe('ok\n');
    expect(health.packages.filter((name) => !configOnly.packages.includes(name))).toEqual(['commander']);
    for (const name of ['pino', 'pino-pretty', 'ioredis', 'bullmq', 'prom-client']) expect(health.packages).not.toContain(name);
  });
});
