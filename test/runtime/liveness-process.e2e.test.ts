import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { LIVENESS_REASONS } from '../../src/observe/http.js';
import { runCli } from '../support/cli.js';
import { exited, spawnDaemon, until } from '../support/daemon-process.js';
import { TOKEN, people, startEmulator, writeConfig, writeExport } from '../support/fixtures.js';
import { dropPrefix, testPrefix } from '../support/redis.js';
import { freePort } from '../support/redis-server.js';

const TRIGGER = 'probe-trigger-token-0123456789';
const env = { TVSYNC_TEST_TOKEN: TOKEN, TVSYNC_TRIGGER: TRIGGER };
const prefixes: string[] = [];
afterAll(async () => {
  await Promise.all(prefixes.map(dropPrefix));
});

describe('liveness of a running tvsync, as the container and an orchestrator see it', () => {
  it('a scheduler whose cycles no worker starts fails /healthz and `tvsync healthcheck`; once a worker process runs, it is live again', async () => {
    const tv = await startEmulator();
    const prefix = testPrefix('live-process');
    prefixes.push(prefix);
    const port = await freePort();
    const path = writeConfig({
      exportDir: writeExport(people(2, 84_000)),
      baseUrl: tv.baseUrl,
      prefix,
      extra: '    schedule: { every: 10s }\n    fastLane: { enabled: false }\n',
    });
    // The shortest margin and schedule the config takes: the first cycle is due at once and late 10 s later.
    const text = readFileSync(path, 'utf8').replace(
      'log:\n',
      `http: { host: 127.0.0.1, port: ${port}, triggerToken: "\${TVSYNC_TRIGGER}" }\nruntime: { livenessMargin: 10s }\nlog:\n`,
    );
    writeFileSync(path, text);
    const base = `http://127.0.0.1:${port}`;
    const scheduler = spawnDaemon(['--config', path, '--role', 'scheduler'], env);
    let worker: ReturnType<typeof spawnDaemon> | undefined;
    try {
      await until(async () => (await fetch(`${base}/healthz`).catch(() => undefined))?.status === 200, 30_000, 'the HTTP endpoint');
      await until(async () => (await fetch(`${base}/healthz`)).status === 503, 60_000, 'the first cycle to be late');
      const anyone = await fetch(`${base}/healthz`);
      expect(await anyone.json()).toEqual({ status: 'failing', reasons: [LIVENESS_REASONS.overdue] });
      const holder = await fetch(`${base}/healthz`, { headers: { authorization: `Bearer ${TRIGGER}` } });
      expect(await holder.json()).toEqual({
        status: 'failing',
        reasons: [LIVENESS_REASONS.overdue],
        problems: [{ sync: 'corp', queue: 'cycles', reason: LIVENESS_REASONS.overdue }],
      });
      const check = await runCli(['healthcheck', '--config', path], env);
      expect(check.code).toBe(1);
      expect(check.stderr).toBe(`tvsync: ${base}/healthz answered 503: ${LIVENESS_REASONS.overdue}\n`);
      await until(() => scheduler.output().includes('liveness fails'), 10_000, 'the log line naming the sync');

      // A worker process on another port takes the late cycle and the ones after it.
      const workerPath = path.replace(/tvsync\.yaml$/, 'worker.yaml');
      writeFileSync(workerPath, text.replace(`port: ${port}`, `port: ${await freePort()}`));
      worker = spawnDaemon(['--config', workerPath, '--role', 'worker'], env);
      await until(async () => (await fetch(`${base}/healthz`)).status === 200, 60_000, 'the scheduler to be live again');
      expect((await runCli(['healthcheck', '--config', path], env)).code).toBe(0);
    } finally {
      worker?.kill('SIGTERM');
      scheduler.kill('SIGTERM');
      expect(await exited(scheduler)).toBe(0);
      if (worker) expect(await exited(worker)).toBe(0);
      await tv.emulator.stop();
    }
  });
});
