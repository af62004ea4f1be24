import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';

/** `tvsync healthcheck`, the container's HEALTHCHECK: 0 and "ok" only for a 2xx from the local /healthz. */

const dir = mkdtempSync(join(tmpdir(), 'tvsync-healthcheck-'));
const env = { TVSYNC_TEST_TOKEN: 'test-token-0123456789' };
const servers: Server[] = [];
const sockets = new Set<Socket>();

afterEach(async () => {
  for (const socket of sockets) socket.destroy();
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function configFor(port: number): string {
  const path = join(dir, `tvsync-${port}.yaml`);
  writeFileSync(path, `http: { port: ${port} }\nsyncs:\n  - name: x\n    source: { type: file, path: . }\n    target: { token: "\${TVSYNC_TEST_TOKEN}" }\n`);
  return path;
}

async function serve(handler: Parameters<typeof createServer>[1]): Promise<{ port: number; paths: string[] }> {
  const paths: string[] = [];
  const server = createServer((req, res) => {
    paths.push(req.url ?? '');
    handler!(req, res);
  });
  server.on('connection', (s) => sockets.add(s));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, paths };
}

describe('tvsync healthcheck', () => {
  it('asks /healthz on the configured port and prints ok on 200, whatever the body', async () => {
    // A body that never ends: only the status counts.
    const { port, paths } = await serve((_req, res) => res.writeHead(200).write('{"status":'));
    const run = await runCli(['healthcheck', '--config', configFor(port)], env);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe('ok\n');
    expect(paths).toEqual(['/healthz']);
  });

  it('exits 1 naming the status when /healthz answers otherwise', async () => {
    const { port } = await serve((_req, res) => res.writeHead(503).end('{"status":"down"}'));
    const run = await runCli(['healthcheck', '--config', configFor(port)], env);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe(`tvsync: http://127.0.0.1:${port}/healthz answered 503\n`);
  });

  it('exits 1 when nothing listens on the port', async () => {
    const { port } = await serve(() => {});
    await new Promise((resolve) => servers.pop()!.close(resolve));
    const run = await runCli(['healthcheck', '--config', configFor(port)], env);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(new RegExp(`^tvsync: http://127\\.0\\.0\\.1:${port}/healthz does not answer: .*ECONNREFUSED`));
  });

  it('gives up after 5 s when /healthz never answers', async () => {
    const { port } = await serve(() => {});
    const run = await runCli(['healthcheck', '--config', configFor(port)], env);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(`tvsync: http://127.0.0.1:${port}/healthz does not answer: The operation was aborted due to timeout\n`);
  });

  it('exits 2 for a configuration it cannot read', async () => {
    const run = await runCli(['healthcheck', '--config', join(dir, 'missing.yaml')], env);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('cannot read');
  });
});
