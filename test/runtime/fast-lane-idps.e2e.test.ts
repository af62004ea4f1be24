import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import type { UserSyncReport } from '../../src/plan/user-sync.js';
import { Daemon } from '../../src/runtime/daemon.js';
import { Observability } from '../../src/runtime/observability.js';
import { FastLaneStore } from '../../src/store/fast-lane.js';
import { provisioned, runCycle } from '../support/cycle.js';
import { TOKEN, silentLog, startEmulator } from '../support/fixtures.js';
import { secretsToEnv, type FakeIdp } from '../support/fakes/fake-idp.js';
import { SECRET_KEYS } from '../../src/net/secrets.js';
import { startEntraFake } from '../support/fakes/entra.js';
import { startJumpcloudFake } from '../support/fakes/jumpcloud.js';
import { startOktaFake } from '../support/fakes/okta.js';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.js';
import { FAST } from '../support/runtime.js';
import { waitFor, waitForIdle } from '../support/wait.js';
import { freePort } from '../support/redis-server.js';

/*
 * The fast lane against each IdP's own wire format: changes made in a stateful fake of the IdP
 * reach the TeamViewer emulator through that IdP's change feed (and hooks), without a cycle.
 */

type Fake = FakeIdp & { env?: Record<string, string> };
const HOOK_SECRET = 'e2e-hook-secret-0123456789abcdef';

interface Idp {
  kind: 'okta' | 'entra' | 'jumpcloud';
  start: () => Promise<Fake>;
  /** The polled feed, as fast as its config allows. */
  polled: Record<string, unknown>;
  /** Hooks only, where the IdP has them. */
  hooked?: (hookUrl: string) => Record<string, unknown>;
  register?: (fake: Fake, hookUrl: string) => Promise<void>;
}

const IDPS: Idp[] = [
  {
    kind: 'okta',
    start: startOktaFake,
    polled: { systemLog: { every: '5s' } },
    hooked: () => ({ systemLog: { enabled: false }, eventHook: { enabled: true, authHeader: 'x-tvsync-hook', hookSecret: '${HOOK_SECRET}' } }),
    register: (fake, url) =>
      (fake as Fake & { registerEventHook(u: string, h: string, s: string): Promise<void> }).registerEventHook(url, 'x-tvsync-hook', HOOK_SECRET),
  },
  {
    kind: 'entra',
    start: startEntraFake,
    polled: { delta: { every: '1s' } },
    hooked: (url) => ({ delta: { enabled: false }, notifications: { enabled: true, notificationUrl: url, clientState: '${HOOK_SECRET}' } }),
  },
  { kind: 'jumpcloud', start: startJumpcloudFake, polled: { insights: { every: '5s' } } },
];

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

async function setUp(
  idp: Idp,
  fake: Fake,
  opts: { changes: Record<string, unknown> | ((hookUrl: string) => Record<string, unknown>); policy?: string; hooks?: boolean },
) {
  const tv = await startEmulator();
  cleanups.push(() => tv.emulator.stop());
  const prefix = testPrefix(`fl-${idp.kind}`);
  cleanups.push(() => dropPrefix(prefix));
  const port = opts.hooks ? await freePort() : 0;
  const hookUrl = `http://127.0.0.1:${port}/hooks/corp/${idp.kind}`;
  const changes = typeof opts.changes === 'function' ? opts.changes(hookUrl) : opts.changes;
  const { source, env } = secretsToEnv(fake.sourceConfig(changes), SECRET_KEYS);
  const config = parseConfig(
    `redis: { url: "${REDIS_URL}", prefix: ${prefix} }
http: { host: 127.0.0.1, port: ${port} }
log: { level: warn }
syncs:
  - name: corp
    source: ${JSON.stringify(source)}
    target: { baseUrl: ${tv.baseUrl}, token: "\${TVSYNC_TEST_TOKEN}", requestsPerSecond: 500, concurrency: 8 }
    schedule: { every: 1h }
${opts.policy ?? ''}`,
    { env: { TVSYNC_TEST_TOKEN: TOKEN, HOOK_SECRET, ...(fake.env ?? {}), ...env } },
  );
  const reports: UserSyncReport[] = [];
  const daemon = await Daemon.start(config, silentLog, {
    scheduler: true,
    worker: true,
    runtime: FAST,
    deferFeeds: true,
    onUserSync: (_s, r) => void reports.push(r),
  });
  cleanups.push(() => daemon.stop());
  if (opts.hooks) {
    const observability = new Observability(config, daemon.redis, silentLog);
    await observability.serve(daemon);
    cleanups.push(() => observability.close());
  }
  daemon.startFeeds();
  const first = await runCycle(daemon);
  expect(first.outcome).toBe('succeeded');
  // The schedule's own first cycle runs at start too: let it finish, so that what follows comes through the fast lane.
  const cycles = daemon.runtime('corp').queues.cycles;
  await waitFor('no cycle running or waiting', async () => {
    const counts = await cycles.getJobCounts('active', 'waiting');
    return (counts.active ?? 0) + (counts.waiting ?? 0) === 0 || undefined;
  });
  const cyclesBefore = (await daemon.runtime('corp').store.reports(50)).length;
  /** Cycles that ran since set-up, other than those a change asked for: none may have done the fast lane's work. */
  const otherCycles = async () => (await daemon.runtime('corp').store.reports(50)).slice(0, -cyclesBefore || undefined).filter((r) => r.trigger !== 'change');
  const fastLane = new FastLaneStore(daemon.redis, prefix, 'corp');
  const tvUser = (email: string) => tv.emulator.dump().users.find((u) => u.userName.toLowerCase() === email);
  const group = (name: string) => tv.emulator.dump().groups.find((g) => g.displayName === name);
  return { tv, daemon, reports, fastLane, tvUser, group, hookUrl, otherCycles };
}

/** The feed's first poll only marks where it starts: changes must come after it. */
async function firstPoll(fastLane: FastLaneStore) {
  await waitFor('the first poll of the change feed', async () => (await fastLane.feeds()).find((f) => f.ok));
}

async function seed(fake: Fake, n: number, tag: string) {
  const out: { id: string; email: string }[] = [];
  for (let i = 0; i < n; i++) {
    const email = `${tag}${i}@corp.example`;
    out.push({ id: (await fake.createUser({ email, givenName: 'Person', familyName: `${tag}${i}` })).id, email });
  }
  return out;
}

const plannedOps = (report: { operations: Record<string, { planned: number }> }) => Object.values(report.operations).reduce((n, c) => n + c.planned, 0);

describe.each(IDPS)('fast lane against $kind', (idp) => {
  it('a deactivation, an unassignment, a new person and a group membership reach TeamViewer through the feed; repeated events end in the IdP state; an out-of-scope person is not created; the next cycle has nothing to do', async () => {
    const fake = await idp.start();
    cleanups.push(() => fake.close());
    const people = await seed(fake, 6, 'p');
    const team = await fake.createGroup('Team');
    await fake.addMember(team.id, people[0]?.id ?? '');
    const setup = await setUp(idp, fake, { changes: idp.polled });
    const { daemon, reports, fastLane, tvUser, group } = setup;
    expect(provisioned(setup.tv.emulator).map((u) => u.userName)).toHaveLength(6);
    await firstPoll(fastLane);

    const [p0, p1, p2, p3, p4] = people;
    if (!p0 || !p1 || !p2 || !p3 || !p4) throw new Error('seed failed');
    await fake.setActive(p1.id, false);
    await fake.setInScope(p2.id, false);
    await fake.createUser({ email: 'newcomer@corp.example', givenName: 'New', familyName: 'Comer' });
    await fake.addMember(team.id, p3.id);
    await fake.setActive(p4.id, false);
    await fake.setActive(p4.id, true);
    await fake.setActive(p4.id, false);
    await fake.createUser({ email: 'outsider@corp.example', givenName: 'Out', familyName: 'Sider', inScope: false });

    await waitFor('every change in TeamViewer', () => {
      const members = group('Team')?.memberIds ?? [];
      const p3tv = tvUser(p3.email);
      return (
        tvUser(p1.email)?.active === false &&
        tvUser(p2.email)?.active === false &&
        tvUser('newcomer@corp.example')?.active === true &&
        tvUser(p4.email)?.active === false &&
        p3tv !== undefined &&
        members.includes(p3tv.id)
      );
    });
    // A user sync hands over its report after its writes: TeamViewer can hold every change a moment before the last report comes.
    await waitForIdle('every user sync finished', daemon.runtime('corp').queues.operations);
    expect(reports.filter((r) => r.outcome === 'applied').every((r) => r.trigger === 'event')).toBe(true);
    // Each write's latency is measured from the IdP's own time of the change (a cycle a group event asked for may have made some of them).
    // Through the fast lane: user syncs, and cycles a change asked for (a feed may ask for one when an event concerns a group).
    expect(
      reports.some((r) => r.latencyMs !== undefined),
      JSON.stringify(reports.map((r) => [r.ref, r.outcome, r.latencyMs])),
    ).toBe(true);
    expect(tvUser('outsider@corp.example')).toBeUndefined();
    expect(await setup.otherCycles()).toEqual([]);
    expect(tvUser(p0.email)?.active).toBe(true);

    await sleep(500);
    const after = await runCycle(daemon);
    expect(after.outcome).toBe('succeeded');
    expect(plannedOps(after)).toBe(0);
  });

  it('holds a burst of removals over the sliding-window threshold', async () => {
    const fake = await idp.start();
    cleanups.push(() => fake.close());
    const people = await seed(fake, 6, 'b');
    const { reports, fastLane, tvUser } = await setUp(idp, fake, {
      changes: idp.polled,
      policy: '    policy: { deactivationThreshold: { maxCount: 2, maxPercent: 100, minCountForPercent: 0 } }\n',
    });
    await firstPoll(fastLane);
    for (const p of people.slice(0, 4)) await fake.setInScope(p.id, false);
    await waitFor('four user syncs', () => reports.filter((r) => r.outcome === 'applied' || r.outcome === 'held').length >= 4 || undefined);
    expect(people.slice(0, 4).filter((p) => tvUser(p.email)?.active === false)).toHaveLength(2);
    expect(await fastLane.held()).toHaveLength(2);
    expect(tvUser(people[5]?.email ?? '')?.active).toBe(true);
  });

  it('removes nothing while the IdP does not answer, and catches up once it does', async () => {
    const fake = await idp.start();
    cleanups.push(() => fake.close());
    const people = await seed(fake, 3, 'o');
    const { daemon, fastLane, tvUser } = await setUp(idp, fake, { changes: idp.polled });
    await firstPoll(fastLane);
    fake.setOutage(true);
    await fake.setInScope(people[0]?.id ?? '', false);
    await waitFor('a failed poll', async () => (await fastLane.feeds()).find((f) => !f.ok));
    expect(tvUser(people[0]?.email ?? '')?.active).toBe(true);
    fake.setOutage(false);
    await waitFor('the catch-up', () => tvUser(people[0]?.email ?? '')?.active === false || undefined);
    const after = await runCycle(daemon);
    expect(plannedOps(after)).toBe(0);
  });

  it.skipIf(!idp.hooked)('brings a change pushed by the IdP in seconds, with polling off', async () => {
    const fake = await idp.start();
    cleanups.push(() => fake.close());
    const people = await seed(fake, 2, 'h');
    const { reports, tvUser, hookUrl, daemon } = await setUp(idp, fake, { changes: (url) => idp.hooked?.(url) ?? {}, hooks: true });
    await idp.register?.(fake, hookUrl);
    // Graph subscriptions are made by the feed's upkeep, which runs on the poll schedule.
    if (idp.kind === 'entra') await waitFor('the subscriptions', async () => (await daemon.runtime('corp').fastLane.feeds()).find((f) => f.ok));
    const changedAt = (await fake.setActive(people[0]?.id ?? '', false)).atMs;
    await waitFor('the pushed deactivation', () => tvUser(people[0]?.email ?? '')?.active === false || undefined, 10_000);
    const writtenAt = Date.now();
    // The report follows the write by a few milliseconds.
    const report = await waitFor('the hook user sync', () => reports.find((r) => r.trigger === 'hook' && r.outcome === 'applied'), 5000);
    expect(report.feed).toBe(`${idp.kind}-hook`);
    expect(writtenAt - changedAt).toBeLessThan(5000);
  });
});
