import { readStatus } from '../../runtime/status.js';
import { describePause } from '../../store/rate-limit-pause.js';
import { load, requireRedis, selectSyncs } from '../context.js';
import { printJson } from '../json.js';
import { renderReport } from '../render-report.js';
import { renderFastLane } from '../render-user-sync.js';

export interface StatusOptions {
  config?: string;
  sync?: string;
  last: number;
  json?: boolean;
}

/** `tvsync status`: each sync's schedule, queue and last cycle reports. */
export async function statusCommand(opts: StatusOptions): Promise<void> {
  const { config } = load(opts.config);
  const redis = await requireRedis(config);
  const out = [];
  try {
    for (const sync of selectSyncs(config, opts.sync)) out.push(await readStatus(redis, config.redis.prefix, sync, opts.last));
  } finally {
    redis.disconnect();
  }
  if (opts.json) {
    printJson({ syncs: out });
    return;
  }
  for (const s of out) {
    process.stdout.write(
      `sync ${s.sync}: next cycle ${s.nextCycleAt ?? 'not scheduled (is a daemon with the scheduler role running?)'}; cycles active ${s.cycles.active ?? 0}, waiting ${(s.cycles.waiting ?? 0) + (s.cycles.delayed ?? 0)}; operations active ${s.operations.active ?? 0}, waiting ${(s.operations.waiting ?? 0) + (s.operations.delayed ?? 0)}\n`,
    );
    if (s.pause) process.stdout.write(`  ${describePause(s.pause)}\n`);
    if (s.quarantined)
      process.stdout.write(
        `  QUARANTINED until ${new Date(s.health.quarantinedUntil ?? 0).toISOString()}: ${s.health.reason ?? ''}; fix the cause, then tvsync sync-now --sync ${s.sync}\n`,
      );
    process.stdout.write(`${renderFastLane(s.fastLane).replace(/^/gm, '  ')}\n`);
    if (s.reports.length === 0) process.stdout.write('  no cycle has finished yet\n');
    for (const report of s.reports) process.stdout.write(`${renderReport(report, { maxItems: 10 }).replace(/^/gm, '  ')}\n`);
  }
}
