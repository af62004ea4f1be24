import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import type { DirectoryUser } from '../../src/model/directory.js';
import { REPORT_LIST_CAP } from '../../src/plan/report.js';
import { Daemon } from '../../src/runtime/daemon.js';
import { Observability } from '../../src/runtime/observability.js';
import { runCli } from '../support/cli.js';
import { runCycle } from '../support/cycle.js';
import { until } from '../support/daemon-process.js';
import { TOKEN, people, silentLog, startEmulator, writeExport } from '../support/fixtures.js';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.js';
import { FAST } from '../support/runtime.js';

/** The provisioning log as the daemon writes it: the cycle wired to the observability hooks. */

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

async function startSync(users: DirectoryUser[], groups: Group[]) {
  const prefix = testPrefix('provlog-e2e');
  prefixes.push(prefix);
  const dir = writeExport(users, groups);
  const yaml = `redis: { url: "${REDIS_URL}", prefix: ${prefix} }
log: { level: warn }
syncs:
  - name: corp
    source: { type: file, path: ${dir}, settle: 0s }
    target: { baseUrl: ${tv.baseUrl}, token: "\${T}", requestsPerSecond: 5000, concurrency: 16 }
`;
  const configPath = join(mkdtempSync(join(tmpdir(), 'tvsync-config-')), 'tvsync.yaml');
  writeFileSync(configPath, yaml);
  const config = parseConfig(yaml, { env: { T: TOKEN } });
  const observability = new Observability(config, redis, silentLog);
  const daemon = await Daemon.start(config, silentLog, { scheduler: false, worker: true, runtime: FAST, ...observability.hooks() });
  daemons.push(daemon);
  return { daemon, configPath, log: observability.provisioningLog('corp'), rewrite: (u: DirectoryUser[], g: Group[]) => writeExport(u, g, dir) };
}

describe('the provisioning log of a running sync', () => {
  it('has every group skip of a cycle, also beyond the report list cap', async () => {
    const users = people(2, 70_000);
    const empty = REPORT_LIST_CAP + 5;
    const groups: Group[] = Array.from({ length: empty }, (_, i) => ({ id: `g-${String(i).padStart(5, '0')}`, name: `Empty ${i}`, members: [] }));
    const { daemon, log } = await startSync(users, groups);
    const report = await runCycle(daemon);
    expect(report.groups?.summary?.skipped['empty-group-not-created']).toBe(empty);
    expect(report.groups?.skipped).toHaveLength(REPORT_LIST_CAP);
    expect(report.notices).toContain(`lists are cut at ${REPORT_LIST_CAP} entries; the provisioning log has every one`);

    const entries = await log.query({ cycleId: report.cycleId, limit: 10_000 });
    const skips = entries.filter((e) => e.kind === 'skipped' && e.reason === 'empty-group-not-created');
    expect(skips).toHaveLength(empty);
    expect(new Set(skips.map((e) => e.sourceGroupId))).toEqual(new Set(groups.map((g) => g.id)));
  });

  it("logs a membership change with the group's ids and whom it added or removed, found by each member's address", async () => {
    const users = people(3, 71_000);
    const [ann, ben, cat] = users.map((u) => u.email!.toLowerCase());
    const { daemon, configPath, log, rewrite } = await startSync(users, [{ id: 'g-team', name: 'Team L', members: [users[0]!.id, users[1]!.id] }]);
    const first = await runCycle(daemon);
    expect(first.operations.createGroup.applied).toBe(1);
    const tvGroupId = tv.emulator.dump().groups.find((g) => g.displayName === 'Team L')?.id;
    expect(tvGroupId).toBeDefined();

    // Ann leaves the group but stays in scope; Cat joins.
    rewrite(users, [{ id: 'g-team', name: 'Team L', members: [users[1]!.id, users[2]!.id] }]);
    const second = await runCycle(daemon);
    expect(second.operations).toMatchObject({ addGroupMembers: { applied: 1 }, removeGroupMembers: { applied: 1 } });

    const groupEntries = async (email: string) => (await log.query({ email })).filter((e) => e.kind !== 'createUser');
    // The log is written as each operation ends, which may be just after the report.
    await until(async () => (await groupEntries(ann!)).length === 2 && (await groupEntries(cat!)).length === 1, 10_000, 'the group entries');
    const member = (i: number) => expect.objectContaining({ sourceId: users[i]!.id, email: users[i]!.email, tvUserId: expect.stringMatching(/^u/) });
    expect(await groupEntries(ann!)).toEqual([
      expect.objectContaining({
        cycleId: second.cycleId,
        kind: 'removeGroupMembers',
        outcome: 'applied',
        sourceGroupId: 'g-team',
        tvGroupId,
        group: tvGroupId,
        members: [member(0)],
      }),
      expect.objectContaining({
        cycleId: first.cycleId,
        kind: 'createGroup',
        outcome: 'applied',
        sourceGroupId: 'g-team',
        tvGroupId,
        group: 'Team L',
        members: [member(0), member(1)],
      }),
    ]);
    expect(await groupEntries(cat!)).toEqual([expect.objectContaining({ kind: 'addGroupMembers', sourceGroupId: 'g-team', tvGroupId, members: [member(2)] })]);
    expect((await groupEntries(ben!)).map((e) => e.kind)).toEqual(['createGroup']);
    // The group id is not taken for a user's.
    for (const entry of await log.query({ cycleId: second.cycleId })) expect(entry.tvUserId === tvGroupId).toBe(false);

    const cli = await runCli(['log', '--config', configPath, '--user', users[0]!.email!.toUpperCase()], { T: TOKEN });
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stdout).toMatch(new RegExp(`removeGroupMembers\\s+applied .*\\(members ${ann}\\)`));
    expect(cli.stdout).toMatch(new RegExp(`createGroup\\s+applied .*\\(members ${ann}, ${ben}\\)`));
  });
});
