import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { renderReport } from '../../src/cli/render-report.js';
import { parseConfig } from '../../src/config/load.js';
import type { DirectoryUser } from '../../src/model/directory.js';
import { Daemon } from '../../src/runtime/daemon.js';
import { Observability } from '../../src/runtime/observability.js';
import { approveFastLane } from '../../src/runtime/approve.js';
import { FastLaneStore } from '../../src/store/fast-lane.js';
import { syncKeys } from '../../src/store/keys.js';
import { waitForCycleReport } from '../../src/runtime/trigger.js';
import { runCli } from '../support/cli.js';
import { runCycle } from '../support/cycle.js';
import { TOKEN, people, silentLog, startEmulator, writeExport } from '../support/fixtures.js';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.js';
import { FAST } from '../support/runtime.js';
import { ScriptedDirectory, startScriptedDaemon } from '../support/scripted-source.js';
import { waitFor, waitForIdle } from '../support/wait.js';

type Group = { id: string; name: string; members: string[] };
let tv: Awaited<ReturnType<typeof startEmulator>>;
let redis: Redis;
const prefixes: string[] = [];
const daemons: Daemon[] = [];

beforeAll(async () => {
  tv = await startEmulator();
  redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
});
afterEach(async () => {
  await Promise.all(daemons.splice(0).map((d) => d.stop()));
});
afterAll(async () => {
  await tv.emulator.stop();
  await redis.quit();
  await Promise.all(prefixes.map(dropPrefix));
});

async function startSync(users: DirectoryUser[], groups: Group[], policy = '') {
  const prefix = testPrefix('recycled-e2e');
  prefixes.push(prefix);
  const dir = writeExport(users, groups);
  const yaml = `redis: { url: "${REDIS_URL}", prefix: ${prefix} }
log: { level: warn }
syncs:
  - name: corp
    source: { type: file, path: ${dir}, settle: 0s }
    target: { baseUrl: ${tv.baseUrl}, token: "\${T}", requestsPerSecond: 5000, concurrency: 16 }
${policy}`;
  const configPath = join(mkdtempSync(join(tmpdir(), 'tvsync-config-')), 'tvsync.yaml');
  writeFileSync(configPath, yaml);
  const config = parseConfig(yaml, { env: { T: TOKEN } });
  const observability = new Observability(config, redis, silentLog);
  const daemon = await Daemon.start(config, silentLog, { scheduler: false, worker: true, runtime: FAST, ...observability.hooks() });
  daemons.push(daemon);
  return { daemon, configPath, log: observability.provisioningLog('corp'), rewrite: (u: DirectoryUser[], g: Group[]) => writeExport(u, g, dir) };
}

const tvUser = (email: string) => tv.emulator.dump().users.find((u) => u.userName.toLowerCase() === email.toLowerCase());
const groupMembers = (name: string) => tv.emulator.dump().groups.find((g) => g.displayName === name)?.memberIds ?? [];

describe('a recycled address', () => {
  it("is held when a newcomer gets a leaver's address, reported, and reactivated for the newcomer once approved", async () => {
    const users = people(3, 91_000);
    const [sam, stay] = users as [DirectoryUser, DirectoryUser, DirectoryUser];
    const sales = (members: string[]): Group[] => [{ id: 'g-sales-r', name: 'Sales R', members }];
    const sync = await startSync(users, sales([sam.id, stay.id]));
    const { daemon } = sync;
    const state = daemon.runtime('corp').sides.state;

    expect((await runCycle(daemon)).outcome).toBe('succeeded');
    const samTv = tvUser(sam.email ?? '');
    expect(samTv?.active).toBe(true);
    const samId = samTv?.id ?? '';
    expect(groupMembers('Sales R')).toContain(samId);
    // A group tvsync does not manage, made by hand in TeamViewer.
    const handMade = await fetch(`${tv.baseUrl}/Groups`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/scim+json' },
      body: JSON.stringify({ schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName: 'Hand-made R', members: [{ value: samId }] }),
    });
    expect(handMade.status).toBe(201);

    // Sam leaves: deactivated, and tvsync records whose user it deactivated.
    sync.rewrite(users.slice(1), sales([stay.id]));
    const left = await runCycle(daemon);
    expect(left.operations.deactivateUser.applied).toBe(1);
    expect(tvUser(sam.email ?? '')?.active).toBe(false);
    expect(await state.getDeactivated(samId)).toEqual({ sourceId: sam.id, atMs: expect.any(Number) });
    expect(groupMembers('Sales R')).not.toContain(samId);

    // A newcomer (a new IdP id) is given Sam's address.
    const newcomer: DirectoryUser = { id: 'emp-newcomer', email: sam.email ?? '', givenName: 'New', familyName: 'Comer', active: true };
    sync.rewrite([...users.slice(1), newcomer], sales([stay.id, newcomer.id]));
    const held = await runCycle(daemon);
    expect(held.outcome).toBe('succeeded');
    expect(held.recycled).toMatchObject({ count: 1, items: [{ sourceId: 'emp-newcomer', tvUserId: samId }] });
    expect(held.recycled?.items[0]?.message).toMatch(new RegExp(`belonged to IdP user ${sam.id}; tvsync deactivated it on \\d{4}-`));
    expect(held.held.pendingApproval).toBe(true);
    expect(held.operations.reactivateUser.planned + held.operations.createUser.planned).toBe(0);
    expect(tvUser(sam.email ?? '')).toMatchObject({ id: samId, active: false, displayName: 'Person 91000' });
    expect(tv.emulator.dump().users.filter((u) => u.userName.toLowerCase() === sam.email?.toLowerCase())).toHaveLength(1);
    expect(await state.getLink('emp-newcomer')).toBeUndefined();
    expect(renderReport(held)).toContain('held for approval: 1 recycled addresses');
    const logged = await sync.log.query({ email: sam.email ?? '' });
    expect(logged.find((e) => e.reason === 'recycled-address')).toMatchObject({ kind: 'skipped', sourceId: 'emp-newcomer', tvUserId: samId });
    // Held again by the next cycle: nothing changes by itself.
    expect((await runCycle(daemon)).recycled?.count).toBe(1);

    const env = { T: TOKEN };
    const planned = await runCli(['plan', '--config', sync.configPath], env);
    expect(planned.code, planned.stderr).toBe(0);
    expect(planned.stdout).toMatch(/recycled-address\s+.*belonged to IdP user emp-091000/);

    const beforeApprove = Date.now();
    const approve = await runCli(['approve', '--config', sync.configPath, '--sync', 'corp', '--cycle', held.cycleId], env);
    expect(approve.code, approve.stderr).toBe(0);
    expect(approve.stdout).toContain('1 recycled addresses');
    const released = await waitForCycleReport(daemon.runtime('corp').store, beforeApprove, { timeoutMs: 30_000, pollMs: 50 });
    expect(released?.operations.reactivateUser.applied).toBe(1);
    expect(released?.recycled).toBeUndefined();
    // The same TeamViewer user, now the newcomer's: reactivated, renamed, linked to the new id only.
    expect(tvUser(sam.email ?? '')).toMatchObject({ id: samId, active: true, displayName: 'New Comer' });
    expect(await state.getLink('emp-newcomer')).toBe(samId);
    expect(await state.getLink(sam.id)).toBeUndefined();
    expect(await state.getDeactivated(samId)).toBeUndefined();
    expect((await daemon.runtime('corp').approvals.recycled()).size).toBe(0);
    // Managed groups follow the newcomer's IdP groups; what tvsync does not manage stays with the account.
    expect(groupMembers('Sales R')).toContain(samId);
    expect(groupMembers('Hand-made R')).toEqual([samId]);
  });

  it('is reactivated at once under policy.recycledAddresses: reactivate', async () => {
    const users = people(2, 92_000);
    const [kim] = users as [DirectoryUser, DirectoryUser];
    const sync = await startSync(users, [], '    policy: { recycledAddresses: reactivate }\n');
    await runCycle(sync.daemon);
    sync.rewrite(users.slice(1), []);
    await runCycle(sync.daemon);
    const kimId = tvUser(kim.email ?? '')?.id;
    expect(tvUser(kim.email ?? '')?.active).toBe(false);
    sync.rewrite([...users.slice(1), { id: 'emp-kim-2', email: kim.email ?? '', givenName: 'Kim', familyName: 'Two', active: true }], []);
    const report = await runCycle(sync.daemon);
    expect(report.recycled).toBeUndefined();
    expect(report.operations.reactivateUser.applied).toBe(1);
    expect(tvUser(kim.email ?? '')).toMatchObject({ id: kimId, active: true, displayName: 'Kim Two' });
    expect(await sync.daemon.runtime('corp').sides.state.getLink('emp-kim-2')).toBe(kimId);
    // The log records an outcome alongside the cycle's own record of it: it may come a moment after the report.
    const logged = await waitFor('the reactivation logged', async () => {
      const entries = await sync.log.query({ email: kim.email ?? '' });
      return entries.some((e) => e.kind === 'reactivateUser') && entries;
    });
    expect(logged.find((e) => e.kind === 'reactivateUser')?.message).toMatch(/recycled address \(policy.recycledAddresses: reactivate\).*emp-092000/);
  });
});

describe('a recycled address in the fast lane', () => {
  it('is held by the user sync even after the old link was dropped, and released by tvsync approve --fast-lane', async () => {
    const prefix = testPrefix('recycled-fl');
    prefixes.push(prefix);
    const directory = new ScriptedDirectory();
    const person = (id: string, familyName: string) => ({ id, email: 'fastr30@corp.example', givenName: 'Fast', familyName, active: true });
    directory.seed([person('idp-r30', 'Old'), { ...person('idp-r31', 'Other'), email: 'fastr31@corp.example' }]);
    const { daemon, reports } = await startScriptedDaemon(directory, { baseUrl: tv.baseUrl, prefix });
    daemons.push(daemon);
    const state = daemon.runtime('corp').sides.state;
    const fastLane = new FastLaneStore(daemon.redis, prefix, 'corp');
    const oldId = tvUser('fastr30@corp.example')?.id ?? '';

    directory.remove('idp-r30');
    await waitFor('the leaver deactivated', () => tvUser('fastr30@corp.example')?.active === false);
    // The user sync records the deactivation after TeamViewer shows it.
    await waitForIdle("the leaver's user sync finished", daemon.runtime('corp').queues.operations);
    expect(await state.getDeactivated(oldId)).toMatchObject({ sourceId: 'idp-r30' });
    // The link goes (an operator cleaned up, say); tvsync's record of the deactivation stays.
    await daemon.redis.hdel(syncKeys(prefix, 'corp').links, 'idp-r30');

    directory.add(person('idp-r30-new', 'New'));
    const held = await waitFor('the newcomer held', () => reports.find((r) => r.sourceId === 'idp-r30-new'));
    expect(held.outcome).toBe('held');
    expect(held.held.join(' ')).toMatch(/recycled address: TeamViewer user .* belonged to IdP user idp-r30; tvsync deactivated it on/);
    expect(await fastLane.held()).toMatchObject([{ kind: 'recycled-address', sourceId: 'idp-r30-new', tvUserId: oldId }]);
    expect(tvUser('fastr30@corp.example')).toMatchObject({ id: oldId, active: false });
    expect(await state.getLink('idp-r30-new')).toBeUndefined();

    const released = await approveFastLane(daemon.redis, prefix, 'corp');
    expect(released).toMatchObject({ deactivations: 0, recycledAddresses: 1 });
    await waitFor('the newcomer reactivated', () => tvUser('fastr30@corp.example')?.active === true);
    await waitForIdle("the newcomer's user sync finished", daemon.runtime('corp').queues.operations);
    expect(tvUser('fastr30@corp.example')).toMatchObject({ id: oldId, displayName: 'Fast New' });
    expect(await state.getLink('idp-r30-new')).toBe(oldId);
    expect(await fastLane.held()).toEqual([]);
    expect(await daemon.runtime('corp').approvals.recycled()).toEqual(new Set());
  });
});
