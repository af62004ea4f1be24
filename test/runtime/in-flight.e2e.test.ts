import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/observe/log.js';
import { Daemon } from '../../src/runtime/daemon.js';
import { requestCycle, waitForCycleReport } from '../../src/runtime/trigger.js';
import { TOKEN, people, startEmulator, writeExport } from '../support/fixtures.js';
import { startLyingTeamViewer } from '../support/lying-teamviewer.js';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.js';
import { FAST } from '../support/runtime.js';

const prefixes: string[] = [];
afterAll(async () => {
  await Promise.all(prefixes.map(dropPrefix));
});

describe('the operation workers of a process', () => {
  it('keep more jobs open than the target concurrency, yet never send TeamViewer more writes at once than it', async () => {
    const prefix = testPrefix('in-flight');
    prefixes.push(prefix);
    const tv = await startEmulator({ latencyMs: 40 });
    const liar = await startLyingTeamViewer(tv.baseUrl);
    const config = parseConfig(
      `redis: { url: "${REDIS_URL}", prefix: ${prefix} }
syncs:
  - name: corp
    source: { type: file, path: ${writeExport(people(30, 63_000))} }
    target: { baseUrl: ${liar.baseUrl}, token: "\${T}", requestsPerSecond: 1000, concurrency: 2 }
    groups: { enabled: false }
`,
      { env: { T: TOKEN } },
    );
    const daemon = await Daemon.start(config, createLogger({ level: 'silent' }), { scheduler: false, worker: true, runtime: FAST });
    try {
      const runtime = daemon.runtime('corp');
      const { requestedAt } = await requestCycle(runtime.queues.cycles, 'corp', 'manual');
      const report = await waitForCycleReport(runtime.store, requestedAt, { timeoutMs: 30_000, pollMs: 50 });
      expect(report?.operations.createUser).toEqual({ planned: 30, applied: 30, failed: 0, cancelled: 0 });
      // Two at a time, all the way: the limit is reached, never passed.
      expect(liar.mostWritesInFlight).toBe(2);
    } finally {
      await daemon.stop();
      await liar.close();
      await tv.emulator.stop();
    }
  });
});
