import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { parseConfig } from '../../config/load.js';
import { Daemon } from '../../runtime/daemon.js';
import { tryRedis } from '../../runtime/redis.js';
import { dropPrefix } from '../../store/drop-prefix.js';
import type { CycleReport } from '../../plan/report.js';
import { renderReport } from '../render-report.js';
import { requestCycle, waitForCycleReport } from '../../runtime/trigger.js';
import { TeamViewerEmulator } from '../../emulator/server.js';
import { createLogger } from '../../observe/log.js';
import { EXIT } from '../exit.js';

const DEMO_DIR = fileURLToPath(new URL('../../../config/demo', import.meta.url));
const DEMO_TOKEN = 'demo-script-token-not-a-secret';

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  if (address === null || typeof address === 'string') throw new Error('no free port');
  return address.port;
}

/** A Redis to run against: the one at redisUrl, else a throw-away local redis-server, else advice. */
async function demoRedis(redisUrl: string, print: (line: string) => void): Promise<{ url: string; stop: () => Promise<void> }> {
  const existing = await tryRedis(redisUrl, 1500);
  if (existing) {
    existing.disconnect();
    return { url: redisUrl, stop: async () => {} };
  }
  if (spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status !== 0) {
    throw new Error(
      `no Redis answers at ${redisUrl} and redis-server is not installed. Install it (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis) ` +
        'or start one with Docker (docker run -d -p 6379:6379 redis:7), then run npm run demo again.',
    );
  }
  const port = await freePort();
  print(`no Redis answers at ${redisUrl}: starting a temporary redis-server on 127.0.0.1:${port}`);
  const child: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; i < 50; i++) {
    const redis = await tryRedis(url, 500);
    if (redis) {
      redis.disconnect();
      return { url, stop: async () => void child.kill('SIGTERM') };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error('the temporary redis-server did not start');
}

/**
 * The demo: the export in config/demo synced into a local TeamViewer emulator through the real
 * queue and workers, twice (the second cycle has nothing to do), printing both reports.
 */
export async function runDemo(opts: { redisUrl: string; log: Logger; print: (line: string) => void }): Promise<CycleReport[]> {
  const { print } = opts;
  const redis = await demoRedis(opts.redisUrl, print);
  const emulator = new TeamViewerEmulator({
    tokens: [DEMO_TOKEN],
    owner: { email: 'it-admin@demo.example', name: 'IT Admin' },
    outsideEmails: ['radia.perlman@demo.example'],
  });
  const { baseUrl } = await emulator.start(0);
  print(`TeamViewer emulator: ${baseUrl}`);
  const prefix = `tvsync-demo-${Date.now().toString(36)}`;
  const config = parseConfig(
    `redis: { url: "${redis.url}", prefix: ${prefix} }
syncs:
  - name: demo
    source: { type: file, path: ${JSON.stringify(DEMO_DIR)} }
    target: { baseUrl: ${baseUrl}, token: "\${DEMO_TOKEN}", requestsPerSecond: 200 }
    ssoCustomerId: demo-sso-customer
    protect: [it-admin@demo.example]
`,
    { env: { DEMO_TOKEN } },
  );
  const daemon = await Daemon.start(config, opts.log, { scheduler: false, worker: true, runtime: { pollMs: 50 } });
  const reports: CycleReport[] = [];
  try {
    for (const label of ['first cycle: initial provisioning', 'second cycle: nothing changed, nothing to write']) {
      const runtime = daemon.runtime('demo');
      const { requestedAt } = await requestCycle(runtime.queues.cycles, 'demo', 'once');
      const report = await waitForCycleReport(runtime.store, requestedAt, { timeoutMs: 120_000, pollMs: 50 });
      if (!report) throw new Error('the demo cycle did not finish');
      reports.push(report);
      print(`\n== ${label}\n${renderReport(report)}`);
    }
    const state = emulator.dump();
    print(`\nTeamViewer now holds ${state.users.length} users (${state.users.filter((u) => !u.active).length} inactive) and ${state.groups.length} groups:`);
    for (const group of state.groups) print(`  ${group.displayName}: ${group.memberIds.length} members`);
  } finally {
    await daemon.stop();
    await emulator.stop();
    const cleanup = await tryRedis(redis.url);
    if (cleanup) {
      await dropPrefix(cleanup, prefix);
      cleanup.disconnect();
    }
    await redis.stop();
  }
  return reports;
}

export interface DemoOptions {
  redis: string;
}

/** What the demo does and the words its reports use, printed before anything else. */
export const DEMO_INTRO = `tvsync demo: the IdP export in config/demo is synced into a local TeamViewer emulator, twice,
through the real queue and workers. Nothing outside this machine is touched.

How to read the reports:
  created 20/21      operations applied / planned (likewise updated, deactivated, groups created, …)
  in scope           people the IdP puts under this sync
  TeamViewer         users the TeamViewer company holds
  managed            TeamViewer users this sync created or linked: the only ones it ever changes
  unchanged          managed users already as the IdP says
  failed   CLASS     an operation TeamViewer refused, with the class of failure and what to do
  skipped  REASON    a person, group or membership left alone on purpose, with the reason
  held for approval  deactivations or deletions above a threshold, waiting for tvsync approve
The first cycle includes cases tvsync refuses (a shared address, a disabled user, an address
owned outside the company) so that you see how it reports them.
`;

/** `tvsync demo`: syncs the export in config/demo into a local TeamViewer emulator through the real queue and workers. */
export async function demoCommand(opts: DemoOptions): Promise<void> {
  process.stdout.write(`${DEMO_INTRO}\n`);
  // The reports say what went wrong; only errors are logged, readable on a terminal.
  const log = createLogger({
    level: 'error',
    pretty: process.stderr.isTTY === true,
    ...(process.stderr.isTTY ? {} : { destination: { write: (l: string) => void process.stderr.write(l) } }),
  });
  const reports = await runDemo({ redisUrl: opts.redis, log, print: (line) => process.stdout.write(`${line}\n`) });
  process.exitCode = reports.some((r) => r.outcome === 'failed') ? EXIT.failed : EXIT.ok;
}
