/**
 * `npm run bench [-- name …]`: runs the benchmarks (all, or those named) and prints their figures.
 * Each runs in its own process so one benchmark's heap does not weigh on the next one's memory figures.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BENCHES: Record<string, { module: string; fn: string }> = {
  plan: { module: './plan.ts', fn: 'benchPlan' },
  runtime: { module: './runtime.ts', fn: 'benchRuntime' },
  groups: { module: './groups.ts', fn: 'benchGroups' },
  entra: { module: './connectors/entra.ts', fn: 'benchEntraRead' },
  okta: { module: './connectors/okta.ts', fn: 'benchOktaRead' },
  jumpcloud: { module: './connectors/jumpcloud.ts', fn: 'benchJumpcloudRead' },
  startup: { module: './startup.ts', fn: 'benchStartup' },
  'fast-lane': { module: './fast-lane.ts', fn: 'benchFastLane' },
  'many-syncs': { module: './many-syncs.ts', fn: 'benchManySyncs' },
  steady: { module: './steady.ts', fn: 'benchSteady' },
  'redis-memory': { module: './redis-memory.ts', fn: 'benchRedisMemory' },
  'queue-cost': { module: './queue-cost.ts', fn: 'benchQueueCost' },
  'adaptive-rate': { module: './adaptive-rate.ts', fn: 'benchAdaptiveRate' },
};

const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const names = wanted.length ? wanted : Object.keys(BENCHES);
const unknown = names.filter((n) => !(n in BENCHES));
if (unknown.length) {
  console.error(`unknown benchmark ${unknown.join(', ')}; known: ${Object.keys(BENCHES).join(', ')}`);
  process.exit(2);
}

if (process.env.TVSYNC_BENCH_CHILD) {
  const bench = BENCHES[process.env.TVSYNC_BENCH_CHILD]!;
  const mod = (await import(bench.module)) as Record<string, () => Promise<unknown>>;
  const result = await mod[bench.fn]!();
  console.log(JSON.stringify(result));
  process.exit(0);
}

let failed = false;
for (const name of names) {
  const child = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', fileURLToPath(import.meta.url)], {
    env: { ...process.env, TVSYNC_BENCH_CHILD: name },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const last = child.stdout.trim().split('\n').pop() ?? '';
  if (child.status !== 0) {
    failed = true;
    console.log(`${name}: FAILED (exit ${child.status})`);
    continue;
  }
  console.log(`${name}:`);
  for (const [key, value] of Object.entries(JSON.parse(last) as Record<string, unknown>))
    console.log(`  ${key.padEnd(22)} ${typeof value === 'object' ? JSON.stringify(value) : String(value)}`);
}
process.exit(failed ? 1 : 0);
