import type { Redis } from 'ioredis';
import type { KeyPrefix } from '../../store/keys.js';
import { CycleStore } from '../../store/cycle-store.js';
import { WORKER_SEEN_MS, WorkerPresence } from '../../store/worker-presence.js';
import { closeQueues, cycleIdOf, openQueues, type SyncQueues } from '../../runtime/queues.js';
import type { CycleReport } from '../../plan/report.js';
import { requestCycle, waitForCycleReport, type CycleRequest } from '../../runtime/trigger.js';
import type { SyncConfig } from '../../config/schema.js';
import { load, requireRedis, selectSyncs } from '../context.js';
import { CliFailure, exitCodeOf } from '../exit.js';
import { printJson } from '../json.js';
import { inSpan, startTracing, tracingSettings } from '../../observe/traces.js';
import { renderReport } from '../render-report.js';

export interface SyncNowOptions {
  config?: string;
  sync?: string;
  wait?: boolean;
  timeout: number;
  json?: boolean;
}

/** One sync's entry in `tvsync sync-now --json`. */
interface SyncNowResult {
  sync: string;
  /** The cycle that runs the request; null when it follows a running cycle and has no id yet. */
  cycleId: string | null;
  /** The running cycle the request follows. */
  after?: string;
  /** With --wait: the report of the cycle that covered the request. */
  report?: CycleReport;
}

/** `tvsync sync-now`: asks the running deployment for a cycle now, and with --wait prints its report. */
export async function syncNowCommand(opts: SyncNowOptions): Promise<void> {
  const { config, log } = load(opts.config);
  const syncs = selectSyncs(config, opts.sync);
  const redis = await requireRedis(config);
  const results: SyncNowResult[] = [];
  // The press starts the cycle's trace: the queue carries its context to the worker that runs it.
  const traces = tracingSettings(config.telemetry.traces, process.env);
  const tracing = traces ? await startTracing(traces, log) : undefined;
  try {
    // Before queueing anything: a cycle no worker takes would only wait, and --wait with it.
    const unattended = [];
    for (const sync of syncs) if ((await new WorkerPresence(redis, config.redis.prefix, sync.name).lastSeen()) === undefined) unattended.push(sync.name);
    if (unattended.length)
      throw new CliFailure(
        `no tvsync worker of sync ${unattended.join(', ')} was seen in the last ${WORKER_SEEN_MS / 1000} s (is \`tvsync run\` running with this config's Redis and prefix?); no cycle was queued`,
      );
    for (const sync of syncs) {
      const queues = openQueues(sync.name, redis, config.redis.prefix);
      try {
        const request = await inSpan('sync now', { 'tvsync.sync': sync.name, 'tvsync.via': 'cli' }, () => requestCycle(queues.cycles, sync.name));
        const result: SyncNowResult = { sync: sync.name, cycleId: request.cycleId ?? null, ...(request.after ? { after: request.after } : {}) };
        results.push(result);
        if (!opts.json) process.stdout.write(`${describeRequest(sync.name, request)}\n`);
        if (!opts.wait) continue;
        const report = await waitWithProgress(
          redis,
          config.redis.prefix,
          sync,
          queues,
          request,
          opts.timeout * 1000,
          !opts.json && process.stderr.isTTY === true,
        );
        if (!report) throw new CliFailure(`sync ${sync.name}: no cycle finished within ${opts.timeout} s; is a tvsync worker running?`);
        result.report = report;
        if (!opts.json) process.stdout.write(`${renderReport(report)}\n`);
      } finally {
        await closeQueues(queues);
      }
    }
  } finally {
    redis.disconnect();
    await tracing?.shutdown().catch(() => undefined);
  }
  if (opts.json) printJson({ syncs: results });
  process.exitCode = exitCodeOf(results.flatMap((r) => (r.report ? [r.report] : [])));
}

function describeRequest(sync: string, request: CycleRequest): string {
  if (request.cycleId) return `sync ${sync}: cycle ${request.cycleId} queued`;
  if (request.after) return `sync ${sync}: cycle ${request.after} is running; a follow-up cycle was queued to run after it`;
  return `sync ${sync}: cycle requested`;
}

/**
 * Waits for the report covering the request; on a terminal it shows, on one line of stderr, what
 * runs meanwhile: the cycle's id and its operations done of total.
 */
async function waitWithProgress(
  redis: Redis,
  prefix: KeyPrefix,
  sync: SyncConfig,
  queues: SyncQueues,
  request: CycleRequest,
  timeoutMs: number,
  showProgress: boolean,
): Promise<CycleReport | undefined> {
  const store = new CycleStore(redis, prefix, sync.name);
  const stop = new AbortController();
  const progress = showProgress ? showCycleProgress(store, queues, stop.signal) : Promise.resolve();
  try {
    return await waitForCycleReport(store, request.requestedAt, { timeoutMs });
  } finally {
    stop.abort();
    await progress;
  }
}

async function showCycleProgress(store: CycleStore, queues: SyncQueues, signal: AbortSignal): Promise<void> {
  let shown = '';
  const totals = new Map<string, number>();
  while (!signal.aborted) {
    const line = await progressLine(store, queues, totals).catch(() => shown);
    if (line !== shown) {
      process.stderr.write(`\r\x1b[2K${line}`);
      shown = line;
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  if (shown) process.stderr.write('\r\x1b[2K');
}

/** "cycle 20261201T020000-scheduled: 12 of 40 operations done", or what the cycle waits for. */
async function progressLine(store: CycleStore, queues: SyncQueues, totals: Map<string, number>): Promise<string> {
  const [active] = await queues.cycles.getActive(0, 0);
  if (!active) return 'waiting for a worker to start the cycle…';
  const cycleId = cycleIdOf(active);
  let total = totals.get(cycleId);
  if (total === undefined) {
    const cycle = await store.load(cycleId);
    if (!cycle?.plan) return `cycle ${cycleId}: reading and planning…`;
    const groupOps = cycle.groupPhase?.status === 'synced' ? cycle.groupPhase.plan.operations.length : 0;
    total = cycle.plan.operations.length + groupOps;
    // The group phase is planned after the users' operations ran: its count is final only then.
    if (cycle.groupPhase) totals.set(cycleId, total);
  }
  const { recorded } = await store.progress(cycleId);
  return `cycle ${cycleId}: ${recorded} of ${total} operations done`;
}
