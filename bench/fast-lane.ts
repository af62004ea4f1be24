import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { parseConfig } from '../src/config/load.js';
import { TeamViewerEmulator } from '../src/emulator/server.js';
import type { EmulatorState } from '../src/emulator/store.js';
import { Daemon } from '../src/runtime/daemon.js';
import { Observability } from '../src/runtime/observability.js';
import { requestCycle, waitForCycleReport } from '../src/runtime/trigger.js';
import { secretsToEnv, type FakeIdp } from '../test/support/fakes/fake-idp.js';
import { SECRET_KEYS } from '../src/net/secrets.js';
import { BENCH_TOKEN, REDIS_URL, dropPrefix } from './emulator-process.js';
import { freePort } from '../test/support/redis-server.js';

/*
 * The fast lane's latency: 100 changes made in a fake IdP at random times (deactivations, new
 * people, renames, unassignments, group joins), each timed from the moment the fake made it to the
 * moment the TeamViewer emulator holds it, with the default settings of each IdP's change feed
 * (and with hooks where the IdP has them). Then the extra IdP requests per hour the fast lane costs
 * when nothing changes. Spread and idle time can be shortened for a quick look:
 * TVSYNC_BENCH_SPREAD_S (default 90) and TVSYNC_BENCH_IDLE_S (default 120).
 */

const CHANGES = 100;
const SEED_USERS = 100;
const SPREAD_MS = Number(process.env.TVSYNC_BENCH_SPREAD_S ?? 90) * 1000;
const IDLE_MS = Number(process.env.TVSYNC_BENCH_IDLE_S ?? 120) * 1000;
const HOOK_SECRET = 'bench-hook-secret-0123456789abcdef';

type Kind = 'okta' | 'entra' | 'jumpcloud';

interface Variant {
  name: string;
  kind: Kind;
  /** The `changes:` block; `hookUrl` is tvsync's own hook endpoint. */
  changes: (hookUrl: string) => Record<string, unknown>;
  /** After the daemon is up: register the hook with the fake, where the variant uses one. */
  register?: (fake: FakeIdp, hookUrl: string) => Promise<void>;
  idle: boolean;
}

const VARIANTS: Variant[] = [
  { name: 'okta (System Log, every 15 s)', kind: 'okta', changes: () => ({}), idle: true },
  {
    name: 'okta (event hook)',
    kind: 'okta',
    changes: () => ({ systemLog: { enabled: false }, eventHook: { enabled: true, authHeader: 'Authorization', hookSecret: '${HOOK_SECRET}' } }),
    register: (fake, url) =>
      (fake as FakeIdp & { registerEventHook(u: string, h: string, s: string): Promise<void> }).registerEventHook(url, 'Authorization', HOOK_SECRET),
    idle: false,
  },
  { name: 'entra (delta rounds, every 20 s)', kind: 'entra', changes: () => ({}), idle: true },
  {
    // Graph's group notifications do not name the member: they make the delta feed read at once, so delta stays on.
    name: 'entra (change notifications, with delta rounds)',
    kind: 'entra',
    changes: (url) => ({ notifications: { enabled: true, notificationUrl: url, clientState: '${HOOK_SECRET}' } }),
    idle: false,
  },
  { name: 'jumpcloud (Directory Insights, every 20 s)', kind: 'jumpcloud', changes: () => ({}), idle: true },
];

async function startFake(kind: Kind): Promise<FakeIdp & { env?: Record<string, string> }> {
  switch (kind) {
    case 'okta':
      return (await import('../test/support/fakes/okta.js')).startOktaFake();
    case 'entra':
      return (await import('../test/support/fakes/entra.js')).startEntraFake();
    case 'jumpcloud':
      return (await import('../test/support/fakes/jumpcloud.js')).startJumpcloudFake();
  }
}

/** What the emulator must hold once a change has gone through. */
type Expectation = (state: EmulatorState) => boolean;

function byEmail(state: EmulatorState, email: string) {
  return state.users.find((u) => u.userName.toLowerCase() === email);
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}

function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}

async function runVariant(variant: Variant, seed: number) {
  let state = seed;
  const random = () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state / 2 ** 31;
  };
  const emulator = new TeamViewerEmulator({ tokens: [BENCH_TOKEN], owner: { email: 'owner@bench.example', name: 'Owner' } });
  const { baseUrl } = await emulator.start(0);
  const fake = await startFake(variant.kind);
  const prefix = `tvsync-bench-fl-${process.pid}-${variant.kind}-${seed}`;
  const log = pino({ level: process.env.BENCH_LOG ?? 'silent' });
  let daemon: Daemon | undefined;
  let observability: Observability | undefined;
  try {
    // The directory before tvsync starts: the feeds' first poll only sets their position.
    const seeded: { id: string; email: string }[] = [];
    for (let i = 0; i < SEED_USERS; i++) {
      const email = `person${i}@bench.example`;
      seeded.push({ id: (await fake.createUser({ email, givenName: 'Person', familyName: String(i) })).id, email });
    }
    const group = await fake.createGroup('Bench Team');
    await fake.addMember(group.id, seeded[0]?.id ?? '');

    // The HTTP port is only known once it listens; hooks need it in the config, so it is taken first.
    const port = await freePort();
    const hookUrl = `http://127.0.0.1:${port}/hooks/bench/${variant.kind}`;
    const { source, env } = secretsToEnv(fake.sourceConfig(variant.changes(hookUrl)), SECRET_KEYS);
    const config = parseConfig(
      `redis: { url: "${REDIS_URL}", prefix: ${prefix} }
http: { host: 127.0.0.1, port: ${port} }
syncs:
  - name: bench
    source: ${JSON.stringify(source)}
    target: { baseUrl: ${baseUrl}, token: "\${T}", tokenOwner: owner@bench.example }
    policy: { deactivationThreshold: { maxCount: 1000, maxPercent: 100, minCountForPercent: 0 } }
`,
      { env: { T: BENCH_TOKEN, HOOK_SECRET, ...(fake.env ?? {}), ...env } },
    );
    // Default runtime settings; the feeds start once the hook endpoint listens, as `tvsync run` does it.
    daemon = await Daemon.start(config, log, { scheduler: true, worker: true, deferFeeds: true });
    observability = new Observability(config, daemon.redis, log);
    await observability.serve(daemon);
    daemon.startFeeds();
    const runtime = daemon.runtime('bench');
    const { requestedAt } = await requestCycle(runtime.queues.cycles, 'bench', 'once');
    const first = await waitForCycleReport(runtime.store, requestedAt, { timeoutMs: 120_000, pollMs: 50 });
    if (first?.outcome !== 'succeeded') throw new Error(`the first cycle did not succeed: ${first?.outcome} ${first?.failure?.message ?? ''}`);
    await variant.register?.(fake, hookUrl);
    // Give the feed its first poll (it only sets the position), so that changes come after it.
    await sleep(variant.kind === 'okta' ? 16_000 : 21_000);

    // 100 changes, of five kinds, at random times within the spread.
    const pool = shuffle(seeded.slice(1), random);
    const plans: { label: string; run: () => Promise<{ atMs: number }>; done: Expectation }[] = [];
    for (let i = 0; i < 20; i++) {
      const target = pool.pop();
      if (!target) break;
      plans.push({ label: 'deactivate', run: () => fake.setActive(target.id, false), done: (s) => byEmail(s, target.email)?.active === false });
    }
    for (let i = 0; i < 20; i++) {
      const email = `newcomer${i}@bench.example`;
      plans.push({
        label: 'new person',
        run: async () => fake.createUser({ email, givenName: 'New', familyName: String(i) }),
        done: (s) => byEmail(s, email)?.active === true,
      });
    }
    for (let i = 0; i < 20; i++) {
      const target = pool.pop();
      if (!target) break;
      plans.push({
        label: 'rename',
        run: () => fake.rename(target.id, 'Renamed', String(i)),
        done: (s) => byEmail(s, target.email)?.displayName === `Renamed ${i}`,
      });
    }
    for (let i = 0; i < 20; i++) {
      const target = pool.pop();
      if (!target) break;
      plans.push({ label: 'unassign', run: () => fake.setInScope(target.id, false), done: (s) => byEmail(s, target.email)?.active === false });
    }
    for (let i = 0; i < 20; i++) {
      const target = pool.pop();
      if (!target) break;
      plans.push({
        label: 'joins group',
        run: () => fake.addMember(group.id, target.id),
        done: (s) => {
          const tvUser = byEmail(s, target.email);
          return tvUser !== undefined && (s.groups.find((g) => g.displayName === 'Bench Team')?.memberIds.includes(tvUser.id) ?? false);
        },
      });
    }
    const times = plans.map(() => random() * SPREAD_MS).sort((a, b) => a - b);
    const order = shuffle([...plans], random).slice(0, CHANGES);
    const pending: { label: string; atMs: number; done: Expectation }[] = [];
    const latencies: { label: string; ms: number }[] = [];
    let watching = true;
    const watcher = (async () => {
      while (watching || pending.length > 0) {
        const snapshot = emulator.dump();
        const now = Date.now();
        for (let i = pending.length - 1; i >= 0; i--) {
          const item = pending[i];
          if (item?.done(snapshot)) {
            latencies.push({ label: item.label, ms: now - item.atMs });
            pending.splice(i, 1);
          }
        }
        if (!watching && pending.length > 0 && pending.every((p) => now - p.atMs > 300_000)) break;
        await sleep(100);
      }
    })();
    const started = Date.now();
    for (const [i, plan] of order.entries()) {
      const wait = started + (times[i] ?? 0) - Date.now();
      if (wait > 0) await sleep(wait);
      const { atMs } = await plan.run();
      pending.push({ label: plan.label, atMs, done: plan.done });
    }
    watching = false;
    await watcher;
    const sorted = latencies.map((l) => l.ms).sort((a, b) => a - b);
    const byKind: Record<string, string> = {};
    for (const label of new Set(latencies.map((l) => l.label))) {
      const ms = latencies
        .filter((l) => l.label === label)
        .map((l) => l.ms)
        .sort((a, b) => a - b);
      byKind[label] = `p50 ${Math.round(percentile(ms, 50) / 100) / 10} s, p95 ${Math.round(percentile(ms, 95) / 100) / 10} s`;
    }

    // Idle: nothing changes; what do the feeds cost?
    let idlePerHour: Record<string, number> | undefined;
    if (variant.idle) {
      const before = fake.requestCounts();
      await sleep(IDLE_MS);
      const after = fake.requestCounts();
      idlePerHour = {};
      for (const [label, count] of Object.entries(after)) {
        const extra = count - (before[label] ?? 0);
        if (extra > 0) idlePerHour[label] = Math.round((extra * 3_600_000) / IDLE_MS);
      }
    }
    return {
      variant: variant.name,
      changes: order.length,
      applied: sorted.length,
      missed: pending.length,
      p50s: Math.round(percentile(sorted, 50) / 100) / 10,
      p95s: Math.round(percentile(sorted, 95) / 100) / 10,
      maxs: Math.round((sorted.at(-1) ?? Number.NaN) / 100) / 10,
      byKind,
      ...(idlePerHour ? { idleRequestsPerHour: idlePerHour } : {}),
    };
  } finally {
    await observability?.close();
    await daemon?.stop();
    await fake.close();
    await emulator.stop();
    await dropPrefix(prefix);
  }
}

export async function benchFastLane() {
  const only = process.env.TVSYNC_BENCH_FAST_LANE;
  const results: Record<string, unknown> = {};
  for (const [i, variant] of VARIANTS.entries()) {
    if (only && !variant.name.startsWith(only)) continue;
    const result = await runVariant(variant, 1000 + i);
    results[variant.name] = result;
    console.error(JSON.stringify(result));
  }
  return results;
}
