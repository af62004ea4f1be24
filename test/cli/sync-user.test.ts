import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { TOKEN, people, startEmulator, writeConfig, writeExport } from '../support/fixtures.js';
import { dropPrefix, testPrefix } from '../support/redis.js';

type Started = Awaited<ReturnType<typeof startEmulator>>;
let tv: Started;
const prefixes: string[] = [];
const env = { TVSYNC_TEST_TOKEN: TOKEN };

beforeAll(async () => {
  tv = await startEmulator();
});
afterAll(async () => {
  await tv.emulator.stop();
  await Promise.all(prefixes.map(dropPrefix));
});

describe('tvsync sync-user', () => {
  it('explains and syncs one person: a dry run writes nothing, the real run creates, a second run finds nothing to do, a leaver is deactivated', async () => {
    const prefix = testPrefix('cli-sync-user');
    prefixes.push(prefix);
    const users = people(3, 90_000);
    const dir = writeExport(users);
    const path = writeConfig({ exportDir: dir, baseUrl: tv.baseUrl, prefix });

    const dry = await runCli(['sync-user', '--config', path, 'PERSON90001@corp.example', '--dry-run'], env);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/^Dry run: user sync of person90001@corp\.example \(emp-090001\) in sync corp: planned/);
    expect(dry.stdout).toMatch(/Scope\s+in scope/);
    expect(dry.stdout).toMatch(/TeamViewer\s+TeamViewer holds no user person90001@corp\.example/);
    expect(dry.stdout).toMatch(/Would do:\n\s+create person90001@corp\.example/);
    expect(tv.emulator.dump().users.some((u) => u.userName === 'person90001@corp.example')).toBe(false);

    const real = await runCli(['sync-user', '--config', path, 'emp-090001', '--json'], env);
    expect(real.code, real.stderr).toBe(0);
    const out = JSON.parse(real.stdout) as {
      syncs: { sync: string; report: { outcome: string; trigger: string; operations: { kind: string; status: string }[]; steps: { step: string }[] } }[];
    };
    expect(out.syncs.map((s) => s.sync)).toEqual(['corp']);
    const report = out.syncs[0]?.report;
    if (!report) throw new Error('no report');
    expect(report).toMatchObject({ outcome: 'applied', trigger: 'manual', operations: [{ kind: 'createUser', status: 'applied' }] });
    expect(report.steps.map((s) => s.step)).toEqual(['idp', 'scope', 'link', 'mapping', 'teamviewer', 'decision', 'groups']);
    expect(tv.emulator.dump().users.find((u) => u.userName === 'person90001@corp.example')?.active).toBe(true);

    const again = await runCli(['sync-user', '--config', path, 'emp-090001'], env);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/: unchanged\n/);
    expect(again.stdout).toMatch(/Link\s+linked to TeamViewer user \S+ \(person90001@corp\.example, active\)/);

    // The person leaves the export: the linked TeamViewer user is deactivated.
    writeExport(
      users.filter((u) => u.id !== 'emp-090001'),
      [],
      dir,
    );
    const left = await runCli(['sync-user', '--config', path, 'emp-090001'], env);
    expect(left.code, left.stderr).toBe(0);
    expect(left.stdout).toMatch(/Scope\s+not in scope: not in the export/);
    expect(left.stdout).toMatch(/deactivate person90001@corp\.example: IdP user emp-090001 is no longer in scope/);
    expect(tv.emulator.dump().users.find((u) => u.userName === 'person90001@corp.example')?.active).toBe(false);

    const log = await runCli(['log', '--config', path, '--user', 'person90001@corp.example'], env);
    expect(log.stdout).toMatch(/\(fast lane: manual\)/);
  });

  it('fails with exit 1 and changes nothing when the IdP cannot be read whole', async () => {
    const prefix = testPrefix('cli-sync-user-fail');
    prefixes.push(prefix);
    const path = writeConfig({ exportDir: '/nonexistent/tvsync-export', baseUrl: tv.baseUrl, prefix });
    const run = await runCli(['sync-user', '--config', path, 'someone@corp.example'], env);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/: failed/);
    expect(run.stdout).toMatch(/the IdP could not be read, so nothing was changed/);
  });

  it('needs a person: a usage error, exit 2', async () => {
    const run = await runCli(['sync-user'], env);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/missing required argument/);
  });
});
