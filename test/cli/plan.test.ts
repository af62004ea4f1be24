import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { TOKEN, people, startEmulator, writeConfig, writeExport } from '../support/fixtures.js';

type Started = Awaited<ReturnType<typeof startEmulator>>;
let tv: Started;
const env = { TVSYNC_TEST_TOKEN: TOKEN };

beforeAll(async () => {
  tv = await startEmulator();
  // One user already in TeamViewer with another name: the plan must update it.
  await fetch(`${tv.baseUrl}/Users`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/scim+json' },
    body: JSON.stringify({ schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName: 'person0@corp.example', displayName: 'Old Name', active: true }),
  });
});
afterAll(async () => {
  await tv.emulator.stop();
});

describe('tvsync plan', () => {
  it('prints counts, then one line per operation and skipped item, and writes nothing', async () => {
    const users = [...people(3), { id: 'nomail', displayName: 'No Mail', active: true }];
    const config = writeConfig({ exportDir: writeExport(users), baseUrl: tv.baseUrl });
    const before = tv.emulator.stats.writes;
    const run = await runCli(['plan', '--config', config], env);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('sync corp: 4 users in the IdP scope');
    expect(run.stdout).toMatch(/create 2 · update 1 · reactivate 0 · deactivate 0 · held 0 · unchanged 0 · skipped 1/);
    expect(run.stdout).toMatch(/create\s+create person1@corp\.example \(Person 1\): new in the IdP scope/);
    expect(run.stdout).toMatch(/update\s+update person0@corp\.example: name "Old Name" → "Person 0"/);
    expect(run.stdout).toMatch(/no-email\s+IdP user nomail has no e-mail/);
    expect(tv.emulator.stats.writes).toBe(before);
  });

  it('shows the role changes a cycle would make, and writes nothing', async () => {
    await fetch(`${tv.webApiBaseUrl}/userroles`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ Name: 'Plan Support' }),
    });
    const users = people(2, 500);
    const exportDir = writeExport(users, [{ id: 'g-plan', name: 'Plan Helpdesk', members: users.map((u) => u.id) }]);
    const extra = `    roles:
      enabled: true
      mappings:
        - { idpGroup: g-plan, role: Plan Support }
        - { idpGroup: g-plan, role: Plan Support, assign: accounts }
        - { idpGroup: g-plan, role: Not There }
`;
    const config = writeConfig({ exportDir, baseUrl: tv.baseUrl, extra });
    const before = tv.emulator.stats.writes;
    const run = await runCli(['plan', '--config', config], env);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('roles: 3 mapping(s), 1 role(s) concerned');
    expect(run.stdout).toMatch(/assign\s+assign role Plan Support to user group \(new Plan Helpdesk\)/);
    expect(run.stdout).toMatch(/assign\s+assign role Plan Support to 2 account\(s\)/);
    expect(run.stdout).toMatch(/role-not-found\s+role Not There named in roles.mappings is not a TeamViewer user role/);
    expect(tv.emulator.stats.writes).toBe(before);
  });

  it('prints JSON with --json and works from TVSYNC_CONFIG', async () => {
    const config = writeConfig({ exportDir: writeExport(people(2)), baseUrl: tv.baseUrl });
    const run = await runCli(['plan', '--json'], { ...env, TVSYNC_CONFIG: config });
    expect(run.code, run.stderr).toBe(0);
    const out = JSON.parse(run.stdout) as { syncs: { sync: string; plan: { operations: { kind: string }[] } }[] };
    expect(out.syncs.map((s) => s.sync)).toEqual(['corp']);
    expect(out.syncs[0]?.plan.operations.map((o) => o.kind)).toEqual(['createUser', 'updateUser']);
  });

  it('plans without Redis, matching by e-mail only, and says so', async () => {
    const config = writeConfig({ exportDir: writeExport(people(1)), baseUrl: tv.baseUrl, redisUrl: 'redis://127.0.0.1:1' });
    const run = await runCli(['plan', '--config', config], env);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('No Redis: links are unknown, users are matched by e-mail only');
    expect(run.stderr).toContain('Redis does not answer');
  });

  it('refuses an invalid config with the key path, exit 2', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tvsync-bad-'));
    const path = join(dir, 'bad.yaml');
    writeFileSync(path, 'syncs:\n  - name: corp\n    source: { type: file, path: . }\n    target: { baseUrl: "http://x" }\n');
    const run = await runCli(['plan', '--config', path], env);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('syncs[0].target.token: required');
  });

  it('explains an unreachable TeamViewer, exit 1', async () => {
    const config = writeConfig({ exportDir: writeExport(people(1)), baseUrl: 'http://127.0.0.1:1/scim/v2' });
    const run = await runCli(['plan', '--config', config], env);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/tvsync: TeamViewer: .*ECONNREFUSED.*is the TeamViewer base URL right and reachable\?.*nothing was changed/);
  });

  it('explains a wrong token without printing it, exit 1', async () => {
    const config = writeConfig({ exportDir: writeExport(people(1)), baseUrl: tv.baseUrl });
    const run = await runCli(['plan', '--config', config], { TVSYNC_TEST_TOKEN: 'wrong-token-value-42' });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/401.*check the TeamViewer script token/);
    expect(run.stderr + run.stdout).not.toContain('wrong-token-value-42');
  });

  it('explains a malformed source file, exit 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tvsync-export-'));
    writeFileSync(join(dir, 'users.csv'), 'id,email\n1,a@corp.example,extra\n');
    const config = writeConfig({ exportDir: dir, baseUrl: tv.baseUrl });
    const run = await runCli(['plan', '--config', config], env);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('the IdP read failed, nothing was changed: users.csv line 2: expected 2 fields');
  });

  it('names an unknown sync', async () => {
    const config = writeConfig({ exportDir: writeExport(people(1)), baseUrl: tv.baseUrl });
    const run = await runCli(['plan', '--config', config, '--sync', 'nope'], env);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('no sync named "nope"; the config has corp');
  });
});
