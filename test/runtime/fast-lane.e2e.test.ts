import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Daemon } from '../../src/runtime/daemon.js';
import { FastLaneStore } from '../../src/store/fast-lane.js';
import { approveFastLane } from '../../src/runtime/approve.js';
import { requestCycle } from '../../src/runtime/trigger.js';
import { requestUserSync } from '../../src/runtime/fast-lane.js';
import { provisioned, runCycle } from '../support/cycle.js';
import { startEmulator } from '../support/fixtures.js';
import { dropPrefix, testPrefix } from '../support/redis.js';
import { ScriptedDirectory, startScriptedDaemon } from '../support/scripted-source.js';
import { waitFor, waitForIdle } from '../support/wait.js';

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

const person = (i: number, active = true) => ({ id: `idp-${i}`, email: `fast${i}@corp.example`, givenName: 'Fast', familyName: String(i), active });

/** A daemon whose sync reads the scripted directory, with its first cycles run (test/support/scripted-source.ts). */
async function start(name: string, directory: ScriptedDirectory, extra = '') {
  const prefix = testPrefix(name);
  prefixes.push(prefix);
  const started = await startScriptedDaemon(directory, { baseUrl: tv.baseUrl, prefix, extra });
  daemons.push(started.daemon);
  return { ...started, prefix };
}

const tvUser = (email: string) => tv.emulator.dump().users.find((u) => u.userName.toLowerCase() === email.toLowerCase());

describe('fast lane', () => {
  it('brings a new person, a rename, a leaver and a group change to TeamViewer without a cycle, and the next cycle has nothing left to do', async () => {
    const directory = new ScriptedDirectory();
    directory.seed([person(1), person(2)]);
    directory.group('g-sales', 'Sales', ['idp-1']);
    const { daemon, reports } = await start('fl-basic', directory);
    expect(provisioned(tv.emulator).map((u) => u.userName)).toEqual(['fast1@corp.example', 'fast2@corp.example']);

    const createdAt = directory.add(person(3));
    const created = await waitFor('the create', () => reports.find((r) => r.ref === 'idp-3' && r.outcome === 'applied'));
    expect(created).toMatchObject({ trigger: 'event', feed: 'scripted', what: 'user.created', scope: 'in-scope', email: 'fast3@corp.example' });
    expect(created.operations).toMatchObject([{ kind: 'createUser', status: 'applied' }]);
    expect(created.latencyMs).toBeGreaterThanOrEqual(0);
    expect(Date.parse(created.changedAt ?? '')).toBe(createdAt);
    expect(tvUser('fast3@corp.example')?.active).toBe(true);

    directory.rename('idp-2', 'Renamed');
    await waitFor('the rename', () => tvUser('fast2@corp.example')?.displayName === 'Renamed 2' || undefined);

    directory.addMember('g-sales', 'idp-2');
    await waitFor('the membership', () => {
      const sales = tv.emulator.dump().groups.find((g) => g.displayName === 'Sales');
      return sales && sales.memberIds.length === 2 ? sales : undefined;
    });

    directory.setActive('idp-1', false);
    await waitFor('the deactivation', () => tvUser('fast1@corp.example')?.active === false || undefined);
    directory.setInScope('idp-3', false);
    const left = await waitFor('the leaver', () => reports.find((r) => r.ref === 'idp-3' && r.scope === 'out-of-scope' && r.outcome === 'applied'));
    expect(left.steps.map((s) => s.step)).toEqual(['idp', 'scope', 'link', 'decision', 'groups']);
    expect(tvUser('fast3@corp.example')?.active).toBe(false);
    const sales = tv.emulator.dump().groups.find((g) => g.displayName === 'Sales');
    // idp-1 is disabled, not out of scope: like the cycle, the fast lane keeps a disabled member in the group.
    expect(sales?.memberIds.length).toBe(2);

    const after = await runCycle(daemon);
    expect(Object.values(after.operations).reduce((n, c) => n + c.planned, 0)).toBe(0);
  });

  it('collapses duplicate and out-of-order events and ends in the IdP state; an event for someone out of scope creates nobody', async () => {
    const directory = new ScriptedDirectory();
    directory.seed([person(10)]);
    const { reports } = await start('fl-dup', directory);
    directory.setActive('idp-10', false);
    directory.setActive('idp-10', true);
    directory.setActive('idp-10', false);
    // A late event from before all of these.
    directory.hint('idp-10', Date.now() - 60_000, 'user.activated');
    await waitFor('the user sync', () => reports.find((r) => r.ref === 'idp-10'));
    await sleep(500);
    expect(reports.filter((r) => r.ref === 'idp-10').length).toBeLessThanOrEqual(2);
    expect(tvUser('fast10@corp.example')?.active).toBe(false);

    directory.add(person(11), false);
    const outside = await waitFor('the out-of-scope event', () => reports.find((r) => r.ref === 'idp-11'));
    expect(outside).toMatchObject({ scope: 'out-of-scope', outcome: 'unchanged' });
    expect(tvUser('fast11@corp.example')).toBeUndefined();
  });

  it('holds deactivations over the sliding-window threshold for approval', async () => {
    const directory = new ScriptedDirectory();
    directory.seed([20, 21, 22, 23, 24].map((i) => person(i)));
    const { reports, fastLane, daemon, prefix } = await start(
      'fl-burst',
      directory,
      '    policy: { deactivationThreshold: { maxCount: 2, maxPercent: 100, minCountForPercent: 0 } }\n',
    );
    for (const i of [20, 21, 22, 23]) directory.setInScope(`idp-${i}`, false);
    await waitFor('four user syncs', () => (reports.length >= 4 ? reports : undefined));
    const deactivated = [20, 21, 22, 23].filter((i) => tvUser(`fast${i}@corp.example`)?.active === false);
    expect(deactivated.length).toBe(2);
    expect(reports.filter((r) => r.outcome === 'held').length).toBe(2);
    expect((await fastLane.held()).map((h) => h.email).sort()).toHaveLength(2);
    expect(tvUser('fast24@corp.example')?.active).toBe(true);

    // A cycle does not do what the fast lane held.
    const cycle = await runCycle(daemon);
    expect(cycle.held.count).toBe(2);
    expect([20, 21, 22, 23].filter((i) => tvUser(`fast${i}@corp.example`)?.active === false).length).toBe(2);

    // A person approves: each held person is synced again at once, and deactivated.
    const released = await approveFastLane(daemon.redis, prefix, 'corp');
    expect(released.deactivations).toBe(2);
    await waitFor('the approved deactivations', () => ([20, 21, 22, 23].every((i) => tvUser(`fast${i}@corp.example`)?.active === false) ? true : undefined));
    // A user sync uses its approval after the deactivation TeamViewer already shows.
    await waitForIdle('the approved user syncs finished', daemon.runtime('corp').queues.operations);
    expect(await fastLane.held()).toEqual([]);
    expect(await daemon.runtime('corp').approvals.deactivations()).toEqual(new Set());
    expect(tvUser('fast24@corp.example')?.active).toBe(true);
  });

  it('removes nothing while the IdP cannot be read, and catches up once it can', async () => {
    const directory = new ScriptedDirectory();
    directory.seed([person(30), person(31)]);
    const { daemon, reports } = await start('fl-outage', directory);
    directory.outage = true;
    directory.setInScope('idp-30', false);
    directory.hint('idp-31');
    await sleep(600);
    expect(tvUser('fast30@corp.example')?.active).toBe(true);
    expect(reports.filter((r) => r.outcome !== 'failed')).toEqual([]);
    directory.outage = false;
    await waitFor('the catch-up', () => tvUser('fast30@corp.example')?.active === false || undefined);
    const after = await runCycle(daemon);
    expect(after.outcome).toBe('succeeded');
    expect(Object.values(after.operations).reduce((n, c) => n + c.planned, 0)).toBe(0);
  });

  it('runs a cycle for a change that concerns more than one person', async () => {
    const directory = new ScriptedDirectory();
    directory.seed([person(40)]);
    directory.group('g-ops', 'Ops', ['idp-40']);
    const { daemon } = await start('fl-group', directory);
    directory.renameGroup('g-ops', 'Operations');
    const report = await waitFor('a cycle asked for by the change', async () =>
      (await daemon.runtime('corp').store.reports(5)).find((r) => r.trigger === 'change'),
    );
    expect(report.outcome).toBe('succeeded');
    expect(tv.emulator.dump().groups.find((g) => g.displayName === 'Operations')).toBeDefined();
  });
});

describe('fast lane: what only a whole read would tell', () => {
  it('an address the IdP no longer has is never a reason to deactivate: the person linked to it is re-read by id', async () => {
    const directory = new ScriptedDirectory();
    directory.seed([person(60)]);
    const { daemon } = await start('fl-oldmail', directory);
    const changed = directory.setEmail('idp-60', 'renamed60@corp.example');
    void changed;
    const { report } = await requestUserSync(daemon.runtime('corp').queues.operations, 'fast60@corp.example', { waitMs: 20_000 });
    expect(report?.scope).toBe('in-scope');
    expect(report?.skipped.join(' ')).toMatch(/TeamViewer cannot change an e-mail/);
    expect(tvUser('fast60@corp.example')?.active).toBe(true);
  });

  it('a rehire under a new IdP id keeps the TeamViewer user active and the next cycle links it to the new id', async () => {
    const directory = new ScriptedDirectory();
    directory.seed([person(61), person(62)]);
    const { daemon, reports } = await start('fl-rehire', directory);
    directory.remove('idp-62');
    directory.add({ ...person(62), id: 'idp-620' });
    await waitFor('both user syncs', () => (reports.filter((r) => r.ref === 'idp-62' || r.ref === 'idp-620').length >= 2 ? true : undefined));
    expect(tvUser('fast62@corp.example')?.active).toBe(true);
    expect(reports.flatMap((r) => r.operations).filter((op) => op.kind === 'deactivateUser')).toEqual([]);
    await runCycle(daemon);
    expect(await daemon.runtime('corp').sides.state.getLink('idp-620')).toBe(tvUser('fast62@corp.example')?.id);
    expect(tvUser('fast62@corp.example')?.active).toBe(true);
  });
});

describe('fast-lane interlock', () => {
  it('a user sync waits while a cycle of its sync runs, then applies the change the cycle did not see', async () => {
    const directory = new ScriptedDirectory();
    directory.seed([person(50)]);
    const { daemon, reports } = await start('fl-wait', directory);
    directory.readDelayMs = 1500;
    const { requestedAt } = await requestCycle(daemon.runtime('corp').queues.cycles, 'corp');
    await waitFor('the cycle to start', async () => ((await daemon.runtime('corp').queues.cycles.getActiveCount()) > 0 ? true : undefined));
    await sleep(100);
    directory.setActive('idp-50', false);
    const cycle = await waitFor('the cycle', async () =>
      (await daemon.runtime('corp').store.reports(5)).find((r) => Date.parse(r.startedAt) >= requestedAt - 1000 && r.trigger === 'manual'),
    );
    const synced = await waitFor('the user sync', () => reports.find((r) => r.ref === 'idp-50' && r.outcome === 'applied'));
    expect(Date.parse(synced.startedAt)).toBeGreaterThanOrEqual(Date.parse(cycle.finishedAt) - 50);
    expect(tvUser('fast50@corp.example')?.active).toBe(false);
  });

  it('lets no user sync start while a cycle runs, and tells the cycle how many are applying', async () => {
    const { daemon } = await start('fl-lock', new ScriptedDirectory());
    const prefix = testPrefix('fl-lock-store');
    prefixes.push(prefix);
    const fastLane = new FastLaneStore(daemon.redis, prefix, 'idle');
    const now = Date.now();
    expect(await fastLane.claim('a', now, 10_000)).toBe(true);
    expect(await fastLane.applying(now)).toBe(1);
    await fastLane.markCycleRunning(5000);
    expect(await fastLane.claim('b', now, 10_000)).toBe(false);
    await fastLane.release('a');
    expect(await fastLane.applying(now)).toBe(0);
    await fastLane.clearCycleRunning();
    expect(await fastLane.claim('c', now, 10)).toBe(true);
    // A dead worker's claim lapses.
    expect(await fastLane.applying(now + 20)).toBe(0);
  });
});
