import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { exited, spawnDaemon, until } from '../support/daemon-process.js';
import { TOKEN, people, startEmulator, writeConfig, writeExport } from '../support/fixtures.js';
import { dropPrefix, testPrefix } from '../support/redis.js';

type Started = Awaited<ReturnType<typeof startEmulator>>;
let tv: Started;
const prefixes: string[] = [];
const TRIGGER = 'trigger-token-for-tests-0123';
const env = { TVSYNC_TEST_TOKEN: TOKEN, TVSYNC_TRIGGER: TRIGGER };

beforeAll(async () => {
  tv = await startEmulator({ outsideEmails: ['outside@elsewhere.example'] });
});
afterAll(async () => {
  await tv.emulator.stop();
  await Promise.all(prefixes.map(dropPrefix));
});

function config(users: ReturnType<typeof people>, httpPort = 0) {
  const prefix = testPrefix('cli-run');
  prefixes.push(prefix);
  const path = writeConfig({ exportDir: writeExport(users), baseUrl: tv.baseUrl, prefix });
  const text = readFileSync(path, 'utf8').replace('log:\n', `http: { host: 127.0.0.1, port: ${httpPort}, triggerToken: "\${TVSYNC_TRIGGER}" }\nlog:\n`);
  writeFileSync(path, text);
  return path;
}

describe('tvsync run --once, log and status', () => {
  it('runs one cycle, prints its report, and exits 0; log and status show it', async () => {
    const path = config(people(3, 80_000));
    const once = await runCli(['run', '--once', '--config', path], env);
    expect(once.code, once.stderr).toBe(0);
    expect(once.stdout).toMatch(/cycle \S+ of sync corp \(once\): SUCCEEDED/);
    expect(once.stdout).toContain('created 3/3');

    const log = await runCli(['log', '--config', path, '--user', 'PERSON80001@corp.example'], env);
    expect(log.code, log.stderr).toBe(0);
    expect(log.stdout).toMatch(/sync corp: 1 entries\n.*createUser\s+applied\s+person80001@corp\.example/);

    const status = await runCli(['status', '--config', path], env);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain('sync corp: next cycle not scheduled');
    expect(status.stdout).toMatch(/cycle \S+ of sync corp \(once\): SUCCEEDED/);
  });

  it('exits 3 when some operations failed, and 1 when the cycle failed', async () => {
    const partial = await runCli(
      ['run', '--once', '--config', config([...people(1, 81_000), { id: 'o', email: 'outside@elsewhere.example', displayName: 'Out', active: true }])],
      env,
    );
    expect(partial.code).toBe(3);
    expect(partial.stdout).toContain('owned-outside-company');
    const failed = await runCli(['run', '--once', '--config', config(people(1, 82_000))], { ...env, TVSYNC_TEST_TOKEN: 'revoked-token-123456' });
    expect(failed.code).toBe(1);
    expect(failed.stdout).toMatch(/FAILED[\s\S]*unauthorised/);
    expect(failed.stdout + failed.stderr).not.toContain('revoked-token-123456');
  });
});

describe('the running daemon', () => {
  it('serves health, readiness and metrics, and takes sync-now over HTTP only with the token', async () => {
    const port = 19_000 + Math.floor(Math.random() * 1000);
    const path = config(people(2, 83_000), port);
    const daemon = spawnDaemon(['--config', path], env);
    const base = `http://127.0.0.1:${port}`;
    try {
      await until(async () => (await fetch(`${base}/healthz`).catch(() => undefined))?.status === 200, 30_000, 'the HTTP endpoint');
      // The new scheduler runs a first cycle at once.
      await until(
        async () => (await (await fetch(`${base}/metrics`)).text()).includes('tvsync_cycles_total{sync="corp",outcome="succeeded"} 1'),
        30_000,
        'the first cycle',
      );
      const health = await runCli(['healthcheck', '--config', path], env);
      expect(health.code, health.stderr).toBe(0);
      const ready = await fetch(`${base}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toMatchObject({ ready: true });

      expect((await fetch(`${base}/syncs/corp/sync-now`, { method: 'POST' })).status).toBe(401);
      const accepted = await fetch(`${base}/syncs/corp/sync-now`, { method: 'POST', headers: { Authorization: `Bearer ${TRIGGER}` } });
      expect(accepted.status).toBe(202);
      await until(
        async () => (await (await fetch(`${base}/metrics`)).text()).includes('tvsync_cycles_total{sync="corp",outcome="succeeded"} 2'),
        30_000,
        'the requested cycle',
      );
      const waited = await runCli(['sync-now', '--config', path, '--wait'], env);
      expect(waited.code, waited.stderr).toBe(0);
      expect(waited.stdout).toMatch(/sync corp: cycle (\S+) queued\ncycle \1 of sync corp \(manual\): SUCCEEDED/);
      const metrics = await (await fetch(`${base}/metrics`)).text();
      expect(metrics).toMatch(/tvsync_operations_total\{sync="corp",kind="createUser",outcome="applied"\} 2/);
      expect(metrics).toMatch(/tvsync_users_in_scope\{sync="corp"\} 2/);
      expect(metrics).toMatch(/tvsync_queue_jobs\{/);
    } finally {
      daemon.kill('SIGTERM');
      expect(await exited(daemon)).toBe(0);
    }
  });
});
