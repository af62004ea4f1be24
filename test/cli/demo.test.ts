import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { runDemo } from '../../src/cli/commands/demo.js';
import { silentLog } from '../support/fixtures.js';
import { REDIS_URL } from '../support/redis.js';

async function unusedPort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const port = (server.address() as { port: number }).port;
  await new Promise((r) => server.close(r));
  return port;
}

describe('npm run demo', () => {
  it('syncs config/demo into the emulator through the queue: a partial first cycle that explains itself, then nothing to do', async () => {
    const lines: string[] = [];
    const reports = await runDemo({ redisUrl: REDIS_URL, log: silentLog, print: (l) => lines.push(l) });
    expect(reports.map((r) => r.outcome)).toEqual(['partial', 'succeeded']);
    expect(reports[0]?.operations.createUser).toMatchObject({ planned: 21, applied: 20, failed: 1 });
    expect(reports[0]?.operations.createGroup.applied).toBe(3);
    const out = lines.join('\n');
    expect(out).toContain('== first cycle: initial provisioning');
    expect(out).toMatch(/duplicate-email: ada\.lovelace@demo\.example/);
    expect(out).toMatch(/failed\s+owned-outside radia\.perlman@demo\.example/);
    expect(out).toContain('TeamViewer now holds 21 users');
    expect(reports[1]?.summary?.unchanged).toBe(20);
    // The demo export carries its manifest.json: the read is whole, so nothing is held back.
    expect(reports.map((r) => r.deactivationsBlocked)).toEqual([undefined, undefined]);
  });

  it.skipIf(spawnSync('redis-server', ['--version']).status !== 0)('starts a temporary redis-server when none answers', async () => {
    const lines: string[] = [];
    const reports = await runDemo({ redisUrl: `redis://127.0.0.1:${await unusedPort()}`, log: silentLog, print: (l) => lines.push(l) });
    expect(lines[0]).toMatch(/no Redis answers at .*: starting a temporary redis-server/);
    expect(reports).toHaveLength(2);
  });
});
