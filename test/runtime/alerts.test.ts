import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { Daemon } from '../../src/runtime/daemon.js';
import { Alerter } from '../../src/runtime/alerts.js';
import { buildReport } from '../../src/plan/report.js';
import { TOKEN, people, silentLog, writeConfig, writeExport } from '../support/fixtures.js';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.js';
import { startWebhookReceiver } from '../support/fakes/webhook-receiver.js';

const prefix = testPrefix('alerter');
afterAll(() => dropPrefix(prefix));

describe('alerter', () => {
  it('leaves a failed cycle alerted while the next cycle has saved its health but not yet its report', async () => {
    const receiver = await startWebhookReceiver();
    const path = writeConfig({ exportDir: writeExport(people(1)), baseUrl: 'http://127.0.0.1:9/scim/v2', prefix });
    const config = parseConfig(`${readFileSync(path, 'utf8')}\nalerts:\n  webhooks:\n    - { name: ops, url: '\${U}' }\n`, {
      env: { TVSYNC_TEST_TOKEN: TOKEN, U: `${receiver.origin}/hook` },
    });
    // No workers: the test writes what a cycle would.
    const daemon = await Daemon.start(config, silentLog, { scheduler: false, worker: false });
    const redis = new Redis(REDIS_URL);
    const alerter = new Alerter(config.alerts, redis, prefix, silentLog);
    try {
      const runtime = daemon.runtime('corp');
      const report = (cycleId: string, at: number, failed: boolean) =>
        buildReport({
          sync: 'corp',
          cycleId,
          trigger: 'schedule',
          startedAtMs: at - 10,
          finishedAtMs: at,
          results: [],
          ...(failed ? { failure: { failureClass: 'source-read' as const, message: 'the IdP read failed' } } : {}),
        });
      await runtime.health.save({ consecutiveFailures: 1, quarantines: 0, lastOutcome: 'failed', lastCycleAt: 1000 });
      await runtime.store.finish('c1', report('c1', 1000, true), []);
      expect((await alerter.check(runtime)).map((a) => [a.key, a.status])).toEqual([['cycle-failed:corp', 'firing']]);

      // The next cycle succeeded: its health is saved first, its report a moment later.
      await runtime.health.save({ consecutiveFailures: 0, quarantines: 0, lastOutcome: 'succeeded', lastCycleAt: 2000, lastSuccessAt: 2000 });
      expect(await alerter.check(runtime)).toEqual([]);
      await runtime.store.finish('c2', report('c2', 2000, false), []);
      expect((await alerter.check(runtime)).map((a) => [a.key, a.status])).toEqual([['cycle-failed:corp', 'resolved']]);
      expect(await alerter.check(runtime)).toEqual([]);
      await alerter.dispatcher.idle();
      expect(receiver.calls.map((c) => [c.body.condition, c.body.status])).toEqual([
        ['cycle-failed:corp', 'firing'],
        ['cycle-failed:corp', 'resolved'],
      ]);
    } finally {
      await alerter.close(0);
      await daemon.stop();
      redis.disconnect();
      await receiver.close();
    }
  });
});
