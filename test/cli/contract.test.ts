import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { Daemon } from '../../src/runtime/daemon.js';
import { runCli } from '../support/cli.js';
import { TOKEN, people, silentLog, startEmulator, writeConfig, writeExport } from '../support/fixtures.js';
import { echoedForms } from '../support/leaks.js';
import { dropPrefix, testPrefix } from '../support/redis.js';
import { FAST } from '../support/runtime.js';

/**
 * The CLI's contract with scripts: --version, exit code 2 for a wrong call and 1 for a failure in
 * every command, and --json printing one shape whatever the number of syncs.
 */

type Started = Awaited<ReturnType<typeof startEmulator>>;
let tv: Started;
const prefixes: string[] = [];
const env = { TVSYNC_TEST_TOKEN: TOKEN };
const CLI_MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const COMMANDS = ['plan', 'emulator', 'run', 'sync-now', 'sync-user', 'healthcheck', 'validate', 'log', 'demo', 'approve', 'status'];

beforeAll(async () => {
  tv = await startEmulator();
});
afterAll(async () => {
  await tv.emulator.stop();
  await Promise.all(prefixes.map(dropPrefix));
});

/** A config with one sync (corp) or two (corp and branch), each over its own people. */
function config(syncs: 1 | 2, opts: { redisUrl?: string } = {}): string {
  const prefix = testPrefix('cli-contract');
  prefixes.push(prefix);
  const branch = `  - name: branch
    source: { type: file, path: ${writeExport(people(2, 93_000))}, settle: 0s }
    target:
      baseUrl: ${tv.baseUrl}
      token: \${TVSYNC_TEST_TOKEN}
      requestsPerSecond: 500
`;
  return writeConfig({ exportDir: writeExport(people(2, 92_000 + syncs * 100)), baseUrl: tv.baseUrl, prefix, extra: syncs === 2 ? branch : '', ...opts });
}

function expectNoToken(text: string): void {
  for (const form of echoedForms(TOKEN)) expect(text).not.toContain(form);
}

describe('tvsync --version and --help', () => {
  it('prints the package version and exits 0', async () => {
    const run = await runCli(['--version']);
    expect(run.code).toBe(0);
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(run.stdout.trim()).toBe(pkg.version);
  });

  it('exits 0 for --help of every command', async () => {
    for (const command of COMMANDS) expect((await runCli([command, '--help'])).code, command).toBe(0);
  });
});

describe('usage errors exit 2, failures 1', () => {
  it('exits 2 on an unknown option in every command, an unknown command, and no command', async () => {
    const runs = await Promise.all([...COMMANDS.map((c) => runCli([c, '--no-such-option'])), runCli(['no-such-command']), runCli([])]);
    for (const [i, run] of runs.entries()) expect(run.code, `${[...COMMANDS, 'no-such-command', '(none)'][i]}: ${run.stderr}`).toBe(2);
  });

  it('exits 2 on a missing argument, a bad value and a wrong combination', async () => {
    const path = config(1);
    const cases = [
      ['sync-user', '--config', path],
      ['log', '--config', path, '-n', 'many'],
      ['status', '--config', path, '--last', '-1'],
      ['emulator', '--failure-rate', '2'],
      ['run', '--config', path, '--role', 'boss'],
      ['approve', '--config', path],
      ['approve', '--config', path, '--sync', 'corp'],
      ['plan', '--config', path, '--sync', 'nowhere'],
      ['run', '--config', path, '--once', '--role', 'worker'],
      ['run', '--config', path, '--json'],
    ];
    const runs = await Promise.all(cases.map((args) => runCli(args, env)));
    for (const [i, run] of runs.entries()) expect(run.code, `${cases[i]?.join(' ')}: ${run.stderr}`).toBe(2);
  });

  it('refuses `run --sync` without --once instead of running every sync', async () => {
    const run = await runCli(['run', '--config', config(2), '--sync', 'corp'], env);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--sync only goes with --once');
  });

  it('exits 1 when Redis does not answer, in every command that needs it', async () => {
    const path = config(1, { redisUrl: 'redis://127.0.0.1:1' });
    const cases = [
      ['status'],
      ['log'],
      ['sync-now'],
      ['approve', '--sync', 'corp', '--cycle', 'x'],
      ['run', '--once'],
      ['sync-user', 'person92100@corp.example'],
    ];
    const runs = await Promise.all(cases.map((args) => runCli([...args, '--config', path], env)));
    for (const [i, run] of runs.entries()) {
      expect(run.code, `${cases[i]?.join(' ')}: ${run.stderr}`).toBe(1);
      expectNoToken(run.stdout + run.stderr);
    }
  });

  it('exits 1 when TeamViewer refuses the token, without printing it', async () => {
    const path = config(1);
    const revoked = 'revoked-token-for-the-contract';
    const runs = await Promise.all([
      runCli(['plan', '--config', path], { TVSYNC_TEST_TOKEN: revoked }),
      runCli(['validate', '--config', path], { TVSYNC_TEST_TOKEN: revoked }),
    ]);
    for (const run of runs) {
      expect(run.code, run.stderr).toBe(1);
      expect(run.stdout + run.stderr).not.toContain(revoked);
    }
  });
});

describe('tvsync sync-now', () => {
  it('fails, queueing nothing, when no worker of the sync was seen (one that stopped cleanly does not count)', async () => {
    const path = config(1);
    const once = await runCli(['run', '--once', '--config', path], env);
    expect(once.code, once.stderr).toBe(0);
    const run = await runCli(['sync-now', '--config', path], env);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/no tvsync worker of sync corp was seen in the last \d+ s .*no cycle was queued/);
    expect(run.stdout).toBe('');
  });

  it('prints the id of the cycle it queued when a worker runs', async () => {
    const path = config(1);
    const daemon = await Daemon.start(loadConfig(path, { ...process.env, ...env }), silentLog, { scheduler: false, worker: true, runtime: FAST });
    try {
      const run = await runCli(['sync-now', '--config', path, '--wait'], env);
      expect(run.code, run.stderr).toBe(0);
      const queued = /^sync corp: cycle (\S+) queued$/m.exec(run.stdout)?.[1];
      expect(queued).toMatch(/^\d{8}T\d{6}-\d+$/);
      expect(run.stdout).toContain(`cycle ${queued} of sync corp (manual): SUCCEEDED`);
    } finally {
      await daemon.stop();
    }
  });
});

describe('tvsync sync-now --wait on a terminal', () => {
  const hasScript = spawnSync('script', ['--version']).status === 0;
  it.skipIf(!hasScript)('shows the running cycle and its operations done of total on stderr, then the report', { timeout: 120_000 }, async () => {
    const slow = await startEmulator({ latencyMs: 150 });
    const prefix = testPrefix('cli-progress');
    prefixes.push(prefix);
    const path = writeConfig({ exportDir: writeExport(people(12, 95_000)), baseUrl: slow.baseUrl, prefix });
    writeFileSync(path, readFileSync(path, 'utf8').replace('concurrency: 8', 'concurrency: 1'));
    const daemon = await Daemon.start(loadConfig(path, { ...process.env, ...env }), silentLog, { scheduler: false, worker: true, runtime: FAST });
    try {
      // script(1) gives the command a terminal, as an operator's shell would.
      const command = [process.execPath, '--import', 'tsx', CLI_MAIN, 'sync-now', '--wait', '--config', path].map((a) => `'${a}'`).join(' ');
      // Not spawnSync: the workers of this process must go on running meanwhile.
      const child = spawn('script', ['-qfec', command, '/dev/null'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      const [status] = (await once(child, 'close')) as [number | null];
      const run = { status, stdout };
      expect(run.status, run.stdout).toBe(0);
      expect(run.stdout).toMatch(/cycle \S+: \d+ of 12 operations done/);
      expect(run.stdout).toMatch(/cycle \S+ of sync corp \(manual\): SUCCEEDED/);
    } finally {
      await daemon.stop();
      await slow.emulator.stop();
    }
  });
});

describe('--json: one shape for one sync or many', () => {
  /** The top-level keys and, per sync entry, its keys: what a script relies on. */
  function shape(stdout: string): { top: string[]; entry: string[]; syncs: string[] } {
    const out = JSON.parse(stdout) as { syncs: Record<string, unknown>[] };
    expect(Array.isArray(out.syncs)).toBe(true);
    const entries = out.syncs;
    const entry = Object.keys(entries[0] ?? {}).sort();
    for (const other of entries) expect(Object.keys(other).sort()).toEqual(entry);
    return { top: Object.keys(out).sort(), entry, syncs: entries.map((e) => String(e.sync)) };
  }

  async function both(args: (path: string) => string[], before?: (path: string) => Promise<void>) {
    const shapes = [];
    for (const n of [1, 2] as const) {
      const path = config(n);
      await before?.(path);
      const run = await runCli([...args(path), '--json'], env);
      expect(run.code, run.stderr).toBe(0);
      expectNoToken(run.stdout + run.stderr);
      shapes.push(shape(run.stdout));
    }
    const [one, two] = shapes;
    expect(one?.syncs).toEqual(['corp']);
    expect(two?.syncs).toEqual(['corp', 'branch']);
    expect(one?.top).toEqual(['syncs']);
    expect(two?.top).toEqual(one?.top);
    expect(two?.entry).toEqual(one?.entry);
    return one?.entry;
  }

  const once = async (path: string) => {
    const run = await runCli(['run', '--once', '--config', path], env);
    expect(run.code, run.stderr).toBe(0);
  };

  it('plan', async () => {
    expect(await both((path) => ['plan', '--config', path])).toEqual(['groups', 'plan', 'sync']);
  });

  it('run --once', async () => {
    expect(await both((path) => ['run', '--once', '--config', path])).toEqual(['report', 'sync']);
  });

  it('status and log', async () => {
    expect(await both((path) => ['status', '--config', path], once)).toContain('reports');
    expect(await both((path) => ['log', '--config', path], once)).toEqual(['entries', 'sync']);
  });

  it('sync-now --wait', async () => {
    let daemon: Daemon | undefined;
    try {
      const entry = await both(
        (path) => ['sync-now', '--wait', '--config', path],
        async (path) => {
          await daemon?.stop();
          daemon = await Daemon.start(loadConfig(path, { ...process.env, ...env }), silentLog, { scheduler: false, worker: true, runtime: FAST });
        },
      );
      expect(entry).toEqual(['cycleId', 'report', 'sync']);
    } finally {
      await daemon?.stop();
    }
  });

  it('sync-user (one sync, named when the config has two)', async () => {
    for (const n of [1, 2] as const) {
      const run = await runCli(['sync-user', `person${92_000 + n * 100}@corp.example`, '--sync', 'corp', '--dry-run', '--json', '--config', config(n)], env);
      expect(run.code, run.stderr).toBe(0);
      expect(shape(run.stdout)).toEqual({ top: ['syncs'], entry: ['report', 'sync'], syncs: ['corp'] });
    }
  });
});
