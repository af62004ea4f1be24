import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import type { DirectoryUser } from '../../src/model/directory.js';
import { Daemon } from '../../src/runtime/daemon.js';
import type { RuntimeOptions } from '../../src/runtime/queues.js';
import { requestCycle, waitForCycleReport } from '../../src/runtime/trigger.js';
import type { CycleReport } from '../../src/runtime/report.js';
import { TOKEN, people, silentLog, startEmulator, writeExport } from '../support/fixtures.js';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.js';

export const FAST: Partial<RuntimeOptions> = { pollMs: 50, opBackoffMs: 50, rateLimitFallbackMs: 200, lockDurationMs: 5000, stalledIntervalMs: 2000, shutdownGraceMs: 5000 };

type Started = Awaited<ReturnType<typeof startEmulator>>;
let tv: Started;
const prefixes: string[] = [];
const daemons: Daemon[] = [];

beforeAll(async () => {
  tv = await startEmulator({ outsideEmails: ['outsider@elsewhere.example'] });
});
afterEach(async () => {
  await Promise.all(daemons.splice(0).map((d) => d.stop()));
});
afterAll(async () => {
  await tv.emulator.stop();
  await Promise.all(prefixes.map(dropPrefix));
});

function configFor(exportDir: string, opts: { prefix: string; sync?: string; rps?: number; concurrency?: number; extra?: string }) {
  return parseConfig(
    `redis: { url: "${REDIS_URL}", prefix: ${opts.prefix} }
syncs:
  - name: ${opts.sync ?? 'corp'}
    source: { type: file, path: ${exportDir} }
    target: { baseUrl: ${tv.baseUrl}, token: "\${T}", requestsPerSecond: ${opts.rps ?? 1000}, concurrency: ${opts.concurrency ?? 16} }
${opts.extra ?? ''}`,
    { env: { T: TOKEN } },
  );
}

async function cycle(daemon: Daemon, sync = 'corp'): Promise<CycleReport> {
  const runtime = daemon.runtime(sync);
  const { requestedAt } = await requestCycle(runtime.queues.cycles, sync, 'once');
  const report = await waitForCycleReport(runtime.store, requestedAt, { timeoutMs: 120_000, pollMs: 50 });
  if (!report) throw new Error('no report');
  return report;
}

/** The users tvsync provisioned (the token owner aside). */
function provisioned() {
  return tv.emulator.dump().users.filter((u) => u.userName.startsWith('person'));
}

describe('sync cycles on real Redis against the emulator', () => {
  it('provisions 2,000 users, then a cycle with no change writes nothing', async () => {
    const prefix = testPrefix('initial');
    prefixes.push(prefix);
    const users = people(2000);
    const daemon = await Daemon.start(configFor(writeExport(users), { prefix }), silentLog, { scheduler: false, worker: true, runtime: FAST });
    daemons.push(daemon);

    const first = await cycle(daemon);
    expect(first.outcome).toBe('succeeded');
    expect(first.operations.createUser).toEqual({ planned: 2000, applied: 2000, failed: 0, cancelled: 0 });
    const created = provisioned();
    expect(created).toHaveLength(2000);
    expect(new Set(created.map((u) => u.userName))).toEqual(new Set(users.map((u) => u.email)));

    const writes = tv.emulator.stats.writes;
    const second = await cycle(daemon);
    expect(second.outcome).toBe('succeeded');
    expect(second.summary?.unchanged).toBe(2000);
    expect(Object.values(second.operations).every((c) => c.planned === 0)).toBe(true);
    expect(tv.emulator.stats.writes).toBe(writes);
  });
});
