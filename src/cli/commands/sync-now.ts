import { CycleStore } from '../../store/cycle-store.js';
import { closeQueues, openQueues } from '../../runtime/queues.js';
import type { CycleReport } from '../../plan/report.js';
import { requestCycle, waitForCycleReport } from '../../runtime/trigger.js';
import { load, requireRedis, selectSyncs } from '../context.js';
import { CliFailure, exitCodeOf } from '../exit.js';
import { renderReport } from '../render-report.js';

export interface SyncNowOptions {
  config?: string;
  sync?: string;
  wait?: boolean;
  timeout: number;
}

/** `tvsync sync-now`: asks the running deployment for a cycle now, and with --wait prints its report. */
export async function syncNowCommand(opts: SyncNowOptions): Promise<void> {
  const { config } = load(opts.config);
  const redis = await requireRedis(config);
  const reports: CycleReport[] = [];
  try {
    for (const sync of selectSyncs(config, opts.sync)) {
      const queues = openQueues(sync.name, redis, config.redis.prefix);
      try {
        const { requestedAt } = await requestCycle(queues.cycles, sync.name);
        process.stdout.write(`sync ${sync.name}: cycle requested\n`);
        if (!opts.wait) continue;
        const report = await waitForCycleReport(new CycleStore(redis, config.redis.prefix, sync.name), requestedAt, { timeoutMs: opts.timeout * 1000 });
        if (!report) throw new CliFailure(`sync ${sync.name}: no cycle finished within ${opts.timeout} s; is a tvsync worker running?`);
        reports.push(report);
        process.stdout.write(`${renderReport(report)}\n`);
      } finally {
        await closeQueues(queues);
      }
    }
  } finally {
    redis.disconnect();
  }
  process.exitCode = exitCodeOf(reports);
}
