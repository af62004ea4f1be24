import nock from 'nock';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import type { TvsyncConfig } from '../../src/config/schema.js';
import { Daemon } from '../../src/runtime/daemon.js';
import type { RuntimeOptions } from '../../src/runtime/queues.js';
import type { CycleReport } from '../../src/plan/report.js';
import { requestCycle, waitForCycleReport } from '../../src/runtime/trigger.js';
import type { TeamViewerEmulator } from '../../src/emulator/server.js';
import { OWNER, TOKEN, silentLog, startEmulator } from './fixtures.js';
import { REDIS_URL, dropPrefix, testPrefix } from './redis.js';
import { FAST } from './runtime.js';

/** An in-process worker (no scheduler): cycles run only when a test asks for one. */
export function startWorker(config: TvsyncConfig, runtime: Partial<RuntimeOptions> = {}): Promise<Daemon> {
  return Daemon.start(config, silentLog, { scheduler: false, worker: true, runtime: { ...FAST, ...runtime } });
}

/** Asks for one cycle of `sync` and waits for its report. */
export async function runCycle(daemon: Daemon, sync = 'corp', trigger: 'once' | 'manual' = 'once', timeoutMs = 120_000): Promise<CycleReport> {
  const runtime = daemon.runtime(sync);
  const { requestedAt } = await requestCycle(runtime.queues.cycles, sync, trigger);
  const report = await waitForCycleReport(runtime.store, requestedAt, { timeoutMs, pollMs: 50 });
  if (!report) throw new Error(`no report for a cycle of ${sync} within ${timeoutMs} ms`);
  return report;
}

export interface ProvisionedUser {
  userName: string;
  displayName: string;
  active: boolean;
}

/** Every TeamViewer user but the token owner, sorted by e-mail: what the syncs put there. */
export function provisioned(emulator: TeamViewerEmulator, owner = OWNER): ProvisionedUser[] {
  return emulator
    .dump()
    .users.filter((u) => u.userName.toLowerCase() !== owner.toLowerCase())
    .map(({ userName, displayName, active }) => ({ userName, displayName, active }))
    .sort((a, b) => (a.userName < b.userName ? -1 : a.userName > b.userName ? 1 : 0));
}

/** User writes the emulator saw since its stats were last reset, by kind. */
export function userWrites(emulator: TeamViewerEmulator): { create: number; patch: number; put: number } {
  const routes = emulator.stats.byRoute;
  return { create: routes['POST /Users'] ?? 0, patch: routes['PATCH /Users'] ?? 0, put: routes['PUT /Users'] ?? 0 };
}

/** IdP hosts are faked with nock; the emulator (127.0.0.1) stays reachable. Redis is TCP, nock never sees it. */
export function fakeIdpOnly(): void {
  nock.disableNetConnect();
  nock.enableNetConnect('127.0.0.1');
}

export function restoreNet(): void {
  nock.cleanAll();
  nock.enableNetConnect();
}

/**
 * The life of a connector's full-cycle test file: the IdP faked with nock, and per test a fresh
 * emulator, key prefix and in-process worker, all stopped and cleaned up afterwards.
 */
export function useConnectorCycle(sync: string) {
  const prefixes: string[] = [];
  const daemons: Daemon[] = [];
  const emulators: Awaited<ReturnType<typeof startEmulator>>[] = [];
  beforeAll(fakeIdpOnly);
  afterEach(async () => {
    await Promise.all(daemons.splice(0).map((d) => d.stop()));
    await Promise.all(emulators.splice(0).map((e) => e.emulator.stop()));
    nock.cleanAll();
  });
  afterAll(async () => {
    restoreNet();
    await Promise.all(prefixes.map(dropPrefix));
  });

  /** `source` is the YAML of the sync's source block (indented 6); `env` resolves its secrets. */
  return async function setUp(name: string, source: string, env: Record<string, string>, concurrency = 8) {
    const tv = await startEmulator();
    emulators.push(tv);
    const prefix = testPrefix(name);
    prefixes.push(prefix);
    const config = parseConfig(
      `redis: { url: "${REDIS_URL}", prefix: ${prefix} }
syncs:
  - name: ${sync}
    source:
${source}
    target: { baseUrl: ${tv.baseUrl}, token: "\${TV_TOKEN}", requestsPerSecond: 1000, concurrency: ${concurrency} }
`,
      { env: { ...env, TV_TOKEN: TOKEN } },
    );
    const daemon = await startWorker(config);
    daemons.push(daemon);
    return { tv, daemon };
  };
}
