import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import type { Daemon } from '../../src/runtime/daemon.js';
import { renderReport } from '../../src/cli/render-report.js';
import { waitForCycleReport } from '../../src/runtime/trigger.js';
import { isQuarantined } from '../../src/runtime/health.js';
import { runCli } from '../support/cli.js';
import { TOKEN, people, startEmulator, writeConfig, writeExport } from '../support/fixtures.js';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.js';
import { runCycle, startWorker } from '../support/cycle.js';

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

describe('approve', () => {
  it('holds deactivations above the threshold until a person approves them', async () => {
    const prefix = testPrefix('approve');
    prefixes.push(prefix);
    const users = people(10, 70_000);
    const dir = writeExport(users);
    const configPath = writeConfig({
      exportDir: dir,
      baseUrl: tv.baseUrl,
      prefix,
      extra: '    policy: { deactivationThreshold: { maxCount: 3, maxPercent: 100, minCountForPercent: 0 } }\n',
    });
    const config = parseConfig((await import('node:fs')).readFileSync(configPath, 'utf8'), { env: { TVSYNC_TEST_TOKEN: TOKEN } });
    const daemon = await startWorker(config);
    daemons.push(daemon);
    await runCycle(daemon);

    writeExport(users.slice(0, 5), [], dir);
    const held = await runCycle(daemon);
    expect(held.held).toMatchObject({ count: 5, pendingApproval: true });
    expect(held.operations.deactivateUser.planned).toBe(0);
    expect(
      tv.emulator
        .dump()
        .users.filter((u) => /^person7000[5-9]@/.test(u.userName))
        .every((u) => u.active),
    ).toBe(true);

    // Still held on the next cycle: nothing changes by itself.
    expect((await runCycle(daemon)).held.count).toBe(5);

    const beforeApprove = Date.now();
    const approve = await runCli(['approve', '--config', configPath, '--sync', 'corp', '--cycle', held.cycleId], { TVSYNC_TEST_TOKEN: TOKEN });
    expect(approve.code, approve.stderr).toBe(0);
    expect(approve.stdout).toContain('approved 5 deactivations');
    const runtime = daemon.runtime('corp');
    // approve requests the cycle that runs them.
    const released = (await waitForCycleReport(runtime.store, beforeApprove, { timeoutMs: 30_000, pollMs: 50 }))!;
    expect(released.operations.deactivateUser.applied).toBe(5);
    expect(
      tv.emulator
        .dump()
        .users.filter((u) => /^person7000[5-9]@/.test(u.userName))
        .every((u) => !u.active),
    ).toBe(true);
    expect((await runtime.approvals.deactivations()).size).toBe(0);

    const unknown = await runCli(['approve', '--config', configPath, '--sync', 'corp', '--cycle', 'nope'], { TVSYNC_TEST_TOKEN: TOKEN });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('has no stored cycle nope');
  });
});

describe('approve member removals', () => {
  it('holds member removals above their threshold per group until a person approves them; adds run meanwhile', async () => {
    const prefix = testPrefix('approve-members');
    prefixes.push(prefix);
    const users = people(12, 72_000);
    const ids = (list: typeof users) => list.map((u) => u.id);
    const dir = writeExport(users, [{ id: 'g-all', name: 'Everyone M', members: ids(users.slice(0, 10)) }]);
    const configPath = writeConfig({
      exportDir: dir,
      baseUrl: tv.baseUrl,
      prefix,
      extra: '    policy: { memberRemovalThreshold: { maxCount: 3, maxPercent: 100, minCountForPercent: 0 } }\n',
    });
    const config = parseConfig((await import('node:fs')).readFileSync(configPath, 'utf8'), { env: { TVSYNC_TEST_TOKEN: TOKEN } });
    const daemon = await startWorker(config);
    daemons.push(daemon);
    await runCycle(daemon);
    const members = () => {
      const state = tv.emulator.dump();
      const mail = new Map(state.users.map((u) => [u.id, u.userName]));
      return (state.groups.find((g) => g.displayName === 'Everyone M')?.memberIds ?? []).map((id) => mail.get(id)).sort();
    };
    expect(members()).toHaveLength(10);

    // Five leave the group (they stay users), two join: the five removals exceed 3.
    writeExport(users, [{ id: 'g-all', name: 'Everyone M', members: ids(users.slice(5, 12)) }], dir);
    const held = await runCycle(daemon);
    expect(held.groups?.heldMemberRemovals).toMatchObject({ count: 5, groups: 1, items: [{ displayName: 'Everyone M', members: 5 }] });
    expect(held.held.pendingApproval).toBe(true);
    expect(held.operations.removeGroupMembers.planned).toBe(0);
    expect(held.operations.addGroupMembers.applied).toBe(1);
    expect(members()).toHaveLength(12);
    expect(renderReport(held)).toContain('5 member removals in 1 group(s)');
    expect((await runCycle(daemon)).groups?.heldMemberRemovals?.count).toBe(5);

    const beforeApprove = Date.now();
    const approve = await runCli(['approve', '--config', configPath, '--sync', 'corp', '--cycle', held.cycleId, '--json'], { TVSYNC_TEST_TOKEN: TOKEN });
    expect(approve.code, approve.stderr).toBe(0);
    expect(JSON.parse(approve.stdout)).toEqual({
      syncs: [{ sync: 'corp', cycleId: held.cycleId, approved: expect.objectContaining({ memberRemovals: 5, memberRemovalGroups: 1, deactivations: 0 }) }],
    });
    const runtime = daemon.runtime('corp');
    const released = (await waitForCycleReport(runtime.store, beforeApprove, { timeoutMs: 30_000, pollMs: 50 }))!;
    expect(released.operations.removeGroupMembers.applied).toBe(1);
    expect(released.groups?.heldMemberRemovals).toBeUndefined();
    expect(members()).toEqual(
      users
        .slice(5, 12)
        .map((u) => u.email)
        .sort(),
    );
    expect((await runtime.approvals.memberRemovals()).size).toBe(0);
  });
});

describe('quarantine', () => {
  it('a refused token quarantines the sync: scheduled cycles are skipped until a manual cycle succeeds', async () => {
    const prefix = testPrefix('quarantine');
    prefixes.push(prefix);
    const dir = writeExport(people(2, 71_000));
    const make = (token: string) =>
      parseConfig(
        `redis: { url: "${REDIS_URL}", prefix: ${prefix} }\nsyncs:\n  - name: corp\n    source: { type: file, path: ${dir}, settle: 0s }\n    target: { baseUrl: ${tv.baseUrl}, token: "\${T}" }\n`,
        { env: { T: token } },
      );

    const bad = await startWorker(make('revoked-token-000000'));
    daemons.push(bad);
    const failed = await runCycle(bad);
    expect(failed.failure?.failureClass).toBe('unauthorised');
    const runtime = bad.runtime('corp');
    const health = await runtime.health.load();
    expect(isQuarantined(health, Date.now())).toBe(true);

    // A scheduled cycle is skipped while quarantined: no new report.
    const before = (await runtime.store.reports()).length;
    await runtime.queues.cycles.add('cycle', { trigger: 'schedule' });
    await new Promise((r) => setTimeout(r, 1500));
    expect(await runtime.queues.cycles.getCompletedCount()).toBeGreaterThan(0);
    expect((await runtime.store.reports()).length).toBe(before);
    await bad.stop();

    // The token is fixed; a manual cycle succeeds and lifts the quarantine.
    const good = await startWorker(make(TOKEN));
    daemons.push(good);
    const ok = await runCycle(good, 'corp', 'manual');
    expect(ok.outcome).toBe('succeeded');
    expect(isQuarantined(await good.runtime('corp').health.load(), Date.now())).toBe(false);
  });
});
