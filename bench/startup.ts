import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median } from './figures.js';

/**
 * Start-up of whole processes of the compiled CLI (what the container runs), against the floor:
 * node with zod, yaml and pino loaded. `tvsync healthcheck` runs every 30 s in the container, so it
 * asks a real /healthz here (a server this benchmark starts) and must answer ok.
 * Time is wall-clock from spawn to exit; peak is the process's maximum resident set size.
 */

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const MAIN = join(ROOT, 'dist/cli/main.js');
const TIME = '/usr/bin/time';
const MiB = 1024; // maxRSS is in KiB

interface Run {
  ms: number;
  peakKiB: number;
  code: number | null;
  stdout: string;
  stderr: string;
}

function newestMtime(dir: string): number {
  return Math.max(
    ...readdirSync(dir, { withFileTypes: true }).map((entry) => {
      const path = join(dir, entry.name);
      return entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs;
    }),
  );
}

/** dist/ as `npm run build` makes it, rebuilt when missing or older than src/. */
function ensureBuilt(): void {
  if (existsSync(MAIN) && statSync(MAIN).mtimeMs >= newestMtime(join(ROOT, 'src'))) return;
  const build = spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  if (build.status !== 0) throw new Error('npm run build failed');
}

const hasTime = spawnSync(TIME, ['-f', '%M', 'true'], { stdio: 'ignore' }).status === 0;

/**
 * Runs `node args` once. The peak comes from GNU time where installed; otherwise the process
 * reports its own maxRSS at exit through a preloaded module.
 */
async function measure(args: string[], env: NodeJS.ProcessEnv, scratch: string): Promise<Run> {
  const report = join(scratch, 'rusage');
  rmSync(report, { force: true });
  const [command, argv] = hasTime
    ? [TIME, ['-f', '%M', '-o', report, process.execPath, ...args]]
    : [
        process.execPath,
        [
          '--import',
          `data:text/javascript,import{writeFileSync}from'node:fs';process.on('exit',()=>writeFileSync(${JSON.stringify(report)},String(process.resourceUsage().maxRSS)))`,
          ...args,
        ],
      ];
  const started = performance.now();
  const child = spawn(command, argv, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  const ms = performance.now() - started;
  // GNU time adds "Command exited with non-zero status" above the figure.
  const peakKiB = Number(readFileSync(report, 'utf8').trim().split('\n').pop());
  return { ms, peakKiB, code, stdout, stderr };
}

interface Case {
  name: string;
  args: string[];
  ok: (run: Run) => boolean;
}

interface Figures {
  ms: number;
  peakMiB: number;
  maxPeakMiB: number;
}

/** Runs the cases in turn, round after round, so a busy machine slows each of them alike. */
async function rounds(cases: Case[], env: NodeJS.ProcessEnv, scratch: string, runs: number): Promise<Figures[]> {
  const all: Run[][] = cases.map(() => []);
  // Round 0 is not counted: it brings every file into the page cache.
  for (let round = 0; round <= runs; round++) {
    for (const [i, c] of cases.entries()) {
      const run = await measure(c.args, env, scratch);
      if (!c.ok(run)) throw new Error(`${c.name}: unexpected result (exit ${run.code}): ${run.stdout}${run.stderr}`);
      if (round > 0) all[i]!.push(run);
    }
  }
  return all.map((list) => ({
    ms: median(list.map((r) => r.ms)),
    peakMiB: median(list.map((r) => r.peakKiB)) / MiB,
    maxPeakMiB: Math.max(...list.map((r) => r.peakKiB)) / MiB,
  }));
}

export async function benchStartup(opts: { runs?: number } = {}) {
  const runs = opts.runs ?? 10;
  ensureBuilt();
  const scratch = mkdtempSync(join(tmpdir(), 'tvsync-startup-'));
  const server = createServer((req, res) => {
    res.writeHead(req.url === '/healthz' ? 200 : 404, { 'content-type': 'application/json' }).end('{"ok":true}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const port = (server.address() as AddressInfo).port;
    const config = join(scratch, 'tvsync.yaml');
    writeFileSync(
      config,
      `http: { port: ${port} }\nsyncs:\n  - name: bench\n    source: { type: file, path: ${JSON.stringify(scratch)} }\n    target: { token: "\${TVSYNC_BENCH_TOKEN}" }\n`,
    );
    const env: NodeJS.ProcessEnv = { ...process.env, TVSYNC_BENCH_TOKEN: 'bench-token-0123456789', TVSYNC_CONFIG: config };
    delete env.NODE_OPTIONS; // a loader or flags there would be measured too

    const [floor, help, healthcheck] = await rounds(
      [
        { name: 'floor', args: ['--input-type=module', '-e', "import 'zod'; import 'yaml'; import 'pino';"], ok: (r) => r.code === 0 },
        { name: 'tvsync --help', args: [MAIN, '--help'], ok: (r) => r.code === 0 && r.stdout.includes('healthcheck') },
        { name: 'tvsync healthcheck', args: [MAIN, 'healthcheck'], ok: (r) => r.code === 0 && r.stdout === 'ok\n' },
      ],
      env,
      scratch,
      runs,
    );
    const line = (s: Figures) => `${Math.round(s.ms)} ms, ${s.peakMiB.toFixed(1)} MiB peak (max ${s.maxPeakMiB.toFixed(1)})`;
    const vsFloor = (s: Figures) => `${(s.ms / floor!.ms).toFixed(2)}x time, ${(s.peakMiB / floor!.peakMiB).toFixed(2)}x peak`;
    return {
      runs: `${runs} per command, median${hasTime ? '' : ' (peak from process.resourceUsage, no GNU time)'}`,
      floor: line(floor!),
      help: line(help!),
      helpVsFloor: vsFloor(help!),
      healthcheck: line(healthcheck!),
      healthcheckVsFloor: vsFloor(healthcheck!),
    };
  } finally {
    server.close();
    rmSync(scratch, { recursive: true, force: true });
  }
}
