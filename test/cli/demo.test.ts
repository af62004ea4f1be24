import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { DEMO_INTRO, runDemo } from '../../src/cli/commands/demo.js';
import { SKIP_REASONS } from '../../src/plan/skip-reasons.js';
import { runCli } from '../support/cli.js';
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
    expect(out).toMatch(/failed\s+owned-outside-company radia\.perlman@demo\.example/);
    expect(out).toContain('TeamViewer now holds 21 users');
    expect(reports[1]?.summary?.unchanged).toBe(20);
    // The demo export carries its manifest.json: the read is whole, so nothing is held back.
    expect(reports.map((r) => r.deactivationsBlocked)).toEqual([undefined, undefined]);
    // One name per reason: a skip line and the cause a group skip quotes use the shared names,
    // the same in the first cycle (a failed create) and the second (a skipped one).
    const reasons = [...out.matchAll(/skipped {2}([a-z-]+):/g)].map((m) => m[1]);
    expect(reasons.length).toBeGreaterThan(5);
    for (const reason of reasons) expect(SKIP_REASONS.has(reason ?? '')).toBe(true);
    const causes = [...out.matchAll(/has no TeamViewer user \(([a-z-]+)\)/g)].map((m) => m[1]);
    expect(new Set(causes)).toEqual(new Set(['duplicate-email', 'owned-outside-company', 'inactive-not-in-teamviewer']));
    // Group skips name people by e-mail.
    expect(out).toContain('member-not-provisioned: radia.perlman@demo.example has no TeamViewer user (owned-outside-company); left out of group Engineering');
  });

  it('starts, on the command line, with its explanation and no log line before the first report', async () => {
    const run = await runCli(['demo', '--redis', REDIS_URL]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.startsWith(DEMO_INTRO)).toBe(true);
    expect(run.stdout).toContain('managed            TeamViewer users this sync created or linked');
    const beforeFirstHeader = run.stdout.slice(0, run.stdout.indexOf('== first cycle'));
    expect(beforeFirstHeader).not.toMatch(/^\{/m);
    expect(run.stderr).toBe('');
  });

  it.skipIf(spawnSync('redis-server', ['--version']).status !== 0)('starts a temporary redis-server when none answers', async () => {
    const lines: string[] = [];
    const reports = await runDemo({ redisUrl: `redis://127.0.0.1:${await unusedPort()}`, log: silentLog, print: (l) => lines.push(l) });
    expect(lines[0]).toMatch(/no Redis answers at .*: starting a temporary redis-server/);
    expect(reports).toHaveLength(2);
  });
});
