import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import type { Daemon } from '../../src/runtime/daemon.js';
import { operationBatchSize } from '../../src/runtime/queues.js';
import { runCycle, startWorker } from '../support/cycle.js';
import { TOKEN, people, startEmulator, writeExport } from '../support/fixtures.js';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.js';

type Started = Awaited<ReturnType<typeof startEmulator>>;
let tv: Started;
const prefixes: string[] = [];
const daemons: Daemon[] = [];

beforeAll(async () => {
  tv = await startEmulator();
});
afterEach(async () => {
  await Promise.all(daemons.splice(0).map((d) => d.stop()));
});
afterAll(async () => {
  await tv.emulator.stop();
  await Promise.all(prefixes.map(dropPrefix));
});

function configFor(exportDir: string, prefix: string, requestsPerSecond: number) {
  return parseConfig(
    `redis: { url: "${REDIS_URL}", prefix: ${prefix} }
syncs:
  - name: corp
    source: { type: file, path: ${exportDir}, settle: 0s }
    target: { baseUrl: ${tv.baseUrl}, token: "\${T}", requestsPerSecond: ${requestsPerSecond}, concurrency: 4, tokenOwner: owner@corp.example }
    groups: { enabled: false }
`,
    { env: { T: TOKEN } },
  );
}

describe('operations several to a job', () => {
  it('batches only a long list, and cuts a list the same way every time', () => {
    const options = { opJobsPerCycle: 256, opBatchMax: 25 };
    expect(operationBatchSize(1, options)).toBe(1);
    expect(operationBatchSize(511, options)).toBe(1);
    expect(operationBatchSize(512, options)).toBe(2);
    expect(operationBatchSize(10_000, options)).toBe(25);
    expect(operationBatchSize(1_000_000, options)).toBe(25);
  });

  it('hold the rate limit per request, not per job', async () => {
    const prefix = testPrefix('batch-rate');
    prefixes.push(prefix);
    // 60 creates at 20 requests a second: six jobs of ten, which the limiter alone would start at once.
    const daemon = await startWorker(configFor(writeExport(people(60, 30_000)), prefix, 20), { opJobsPerCycle: 1, opBatchMax: 10 });
    daemons.push(daemon);
    tv.emulator.resetStats();
    const creates = () => tv.emulator.stats.byRoute['POST /Users'] ?? 0;
    const samples: { at: number; creates: number }[] = [];
    const sampler = setInterval(() => samples.push({ at: performance.now(), creates: creates() }), 20);
    let report: Awaited<ReturnType<typeof runCycle>>;
    try {
      report = await runCycle(daemon);
    } finally {
      clearInterval(sampler);
    }
    samples.push({ at: performance.now(), creates: creates() });
    expect(report.operations.createUser).toEqual({ planned: 60, applied: 60, failed: 0, cancelled: 0 });
    expect(creates()).toBe(60);
    const firstAt = samples.find((s) => s.creates > 0)?.at ?? 0;
    const lastAt = samples.find((s) => s.creates >= 60)?.at ?? 0;
    // Three windows of twenty at least: the last create comes two windows after the first.
    expect(lastAt - firstAt).toBeGreaterThan(1800);
    // Windows are fixed, so any one second may hold the end of one and the start of the next: 40 at most.
    for (const s of samples) {
      const second = samples.filter((t) => t.at >= s.at && t.at <= s.at + 1000);
      expect((second.at(-1)?.creates ?? 0) - s.creates).toBeLessThanOrEqual(40);
    }
  });
});
