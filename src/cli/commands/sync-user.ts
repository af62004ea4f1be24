import { setTimeout as sleep } from 'node:timers/promises';
import { scrubSecrets } from '../../net/secrets.js';
import type { UserSyncReport } from '../../plan/user-sync.js';
import { ApprovalStore } from '../../store/approvals.js';
import { FastLaneStore } from '../../store/fast-lane.js';
import { syncKeys } from '../../store/keys.js';
import { ProvisioningLog, type FastLaneOrigin } from '../../observe/provisioning-log.js';
import type { OperationResult } from '../../plan/report.js';
import { describeRedis, openRedis, RedisUnavailable } from '../../runtime/redis.js';
import { CycleRunning, failedReport, PersonBusy, syncOneUser } from '../../runtime/user-sync.js';
import { buildSyncSides } from '../../runtime/wiring.js';
import { load, requireRedis, selectSyncs } from '../context.js';
import { CliFailure, EXIT } from '../exit.js';
import { printJson } from '../json.js';
import { renderUserSync } from '../render-user-sync.js';

export interface SyncUserOptions {
  config?: string;
  sync?: string;
  dryRun?: boolean;
  json?: boolean;
  /** How long to wait for a running cycle of the sync before giving up. */
  wait?: number;
}

/**
 * `tvsync sync-user <email or IdP id>`: one person, now, with a step report. It runs here, not on
 * the daemon's workers, so it works whether or not a daemon runs; it waits while a cycle of the sync
 * runs. A dry run writes nothing and may run without Redis (links are then unknown).
 */
export async function syncUserCommand(ref: string, opts: SyncUserOptions): Promise<void> {
  const { config, log } = load(opts.config);
  const syncs = selectSyncs(config, opts.sync);
  if (syncs.length !== 1) throw new CliFailure(`name the sync with --sync (${config.syncs.map((s) => s.name).join(', ')})`, EXIT.usage);
  const sync = syncs[0];
  if (!sync) throw new CliFailure('no sync selected', EXIT.usage);
  if (!ref.trim()) throw new CliFailure('name the user by e-mail or IdP id', EXIT.usage);
  const redis = opts.dryRun
    ? await openRedis(config.redis, 2000).catch((err: unknown) => {
        const unreachable = !(err instanceof RedisUnavailable) || err.kind === 'unreachable';
        log.warn(
          { redis: describeRedis(config.redis) },
          `${unreachable ? 'Redis does not answer' : 'Redis refuses the connection'}: a dry run without links (matching by e-mail only)`,
        );
        return undefined;
      })
    : await requireRedis(config);
  try {
    const sides = buildSyncSides(sync, {
      ...(redis ? { redis } : {}),
      prefix: config.redis.prefix,
      log,
      readBackoff: { attempts: 3, baseMs: 500, capMs: 2000 },
    });
    const provisioningLog = redis && !opts.dryRun ? new ProvisioningLog(redis, syncKeys(config.redis.prefix, sync.name).provisioningLog) : undefined;
    const deps = {
      sides,
      log,
      ...(redis
        ? { fastLane: new FastLaneStore(redis, config.redis.prefix, sync.name), approvals: new ApprovalStore(redis, config.redis.prefix, sync.name) }
        : {}),
      // Each write goes into the provisioning log, as the daemon's do.
      ...(provisioningLog
        ? { onResult: (result: OperationResult, runId: string, via?: FastLaneOrigin) => provisioningLog.recordResult(runId, result, Date.now(), via) }
        : {}),
    };
    const runId = `u${new Date().toISOString().replace(/[-:]/g, '').slice(0, 15)}-cli-${process.pid}`;
    const data = { ref: ref.trim(), trigger: 'manual' as const, ...(opts.dryRun ? { dryRun: true } : {}) };
    const deadline = Date.now() + (opts.wait ?? 10 * 60_000);
    let report: UserSyncReport;
    for (;;) {
      try {
        report = await syncOneUser(data, runId, deps);
        break;
      } catch (err) {
        if (err instanceof CycleRunning && Date.now() < deadline) {
          if (!opts.json) process.stderr.write('a cycle of this sync is running; waiting for it to finish\n');
          await sleep(2000);
          continue;
        }
        if (err instanceof PersonBusy && Date.now() < deadline) {
          await sleep(300);
          continue;
        }
        report = failedReport(
          data,
          runId,
          sync.name,
          Date.now(),
          err instanceof CycleRunning ? new Error('a cycle of this sync kept running; try again later') : err,
        );
        if (!opts.dryRun) await deps.fastLane?.saveReport(report);
        break;
      }
    }
    if (opts.json) printJson({ syncs: [{ sync: sync.name, report }] });
    else process.stdout.write(`${scrubSecrets(renderUserSync(report))}\n`);
    if (report.outcome === 'failed') process.exitCode = EXIT.failed;
  } finally {
    redis?.disconnect();
  }
}
