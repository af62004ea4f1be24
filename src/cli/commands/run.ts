import type { Logger } from '../../observe/log.js';
import { Daemon } from '../../runtime/daemon.js';
import { Observability } from '../../runtime/observability.js';
import { connectRedis, RedisOutage, verifyRedis } from '../../runtime/redis.js';
import type { CycleReport } from '../../plan/report.js';
import { requestCycle, waitForCycleReport } from '../../runtime/trigger.js';
import { load, selectSyncs } from '../context.js';
import { CliFailure, EXIT, exitCodeOf } from '../exit.js';
import { printJson } from '../json.js';
import { renderReport } from '../render-report.js';

export interface RunOptions {
  config?: string;
  role: 'all' | 'scheduler' | 'worker';
  once?: boolean;
  sync?: string;
  json?: boolean;
}

/** How long past runtime.shutdownGrace a stopping process may take before it exits regardless. */
const HARD_EXIT_MARGIN_MS = 5000;

/**
 * On SIGINT or SIGTERM: `stop`, and if the process is still alive shutdownGrace + a few seconds
 * later (a request that never ends keeps a socket, and so the process, alive), exit regardless.
 * Jobs still running then are taken over by another worker after runtime.lockDuration.
 */
function onStopSignal(log: Logger, graceMs: number, stop: (signal: NodeJS.Signals) => void): void {
  const handler = (signal: NodeJS.Signals) => {
    const limitMs = graceMs + HARD_EXIT_MARGIN_MS;
    setTimeout(() => {
      log.error({ signal, limitMs }, 'shutdown did not finish in time (a request or job is still running): exiting now');
      process.exit(process.exitCode ?? EXIT.ok);
    }, limitMs).unref();
    stop(signal);
  };
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
}

/** `tvsync run`: the daemon (scheduled cycles and workers), or one cycle with --once. */
export async function runCommand(opts: RunOptions): Promise<void> {
  // A daemon runs every sync of its config: a --sync it silently ignored would surprise.
  if (!opts.once && opts.sync !== undefined)
    throw new CliFailure('--sync only goes with --once; the daemon runs every sync of its config (give it a config with only that sync)', EXIT.usage);
  if (!opts.once && opts.json) throw new CliFailure('--json only goes with --once (the daemon prints log lines, not a result)', EXIT.usage);
  if (opts.once && opts.role !== 'all') throw new CliFailure('--role does not go with --once (one cycle runs with in-process workers)', EXIT.usage);
  const { config, log } = load(opts.config);
  const syncs = selectSyncs(config, opts.once ? opts.sync : undefined).map((s) => s.name);
  // One log line per Redis outage across every connection of the process; this one reconnects like the daemon's.
  const outage = new RedisOutage(log, config.redis);
  const observeRedis = connectRedis(config.redis, 'producer', outage);
  await verifyRedis(observeRedis, config.redis, 5000).catch((err: unknown) => {
    observeRedis.disconnect();
    throw new CliFailure(err instanceof Error ? err.message : String(err));
  });
  const observability = new Observability(config, observeRedis, log);
  if (opts.once) {
    const daemon = await Daemon.start(config, log, { scheduler: false, worker: true, syncs, outage, ...observability.hooks() }).catch((err: unknown) => {
      observeRedis.disconnect();
      throw err;
    });
    observability.watch(daemon);
    const stopped = new AbortController();
    onStopSignal(log, daemon.options.shutdownGraceMs, () => {
      process.exitCode = EXIT.failed;
      stopped.abort();
      void daemon.stop();
    });
    try {
      const reports: CycleReport[] = [];
      for (const name of syncs) {
        const runtime = daemon.runtime(name);
        const { requestedAt } = await requestCycle(runtime.queues.cycles, name, 'once');
        const report = await waitForCycleReport(runtime.store, requestedAt, { timeoutMs: daemon.options.cycleTimeoutMs + 60_000, signal: stopped.signal });
        if (!report && stopped.signal.aborted)
          throw new CliFailure(`stopped by a signal before the cycle of sync ${name} finished; it was handed back to the queue`);
        if (!report) throw new CliFailure(`no report for sync ${name}: the cycle did not finish`);
        reports.push(report);
        if (!opts.json) process.stdout.write(`${renderReport(report)}\n`);
      }
      if (opts.json) printJson({ syncs: reports.map((report) => ({ sync: report.sync, report })) });
      process.exitCode = exitCodeOf(reports);
    } finally {
      // Alerts first: their last look reads the daemon's queues.
      await observability.close();
      await daemon.stop();
      observeRedis.disconnect();
    }
    return;
  }
  const daemon = await Daemon.start(config, log, {
    scheduler: opts.role !== 'worker',
    worker: opts.role !== 'scheduler',
    outage,
    // Hooks registered by a feed's first poll are verified at once: the HTTP endpoint must listen first.
    deferFeeds: true,
    ...observability.hooks(),
  }).catch((err: unknown) => {
    observeRedis.disconnect();
    throw err;
  });
  const http = await observability.serve(daemon).catch(async (err: unknown) => {
    // No health endpoint means no way to watch it: do not run blind.
    await daemon.stop();
    observeRedis.disconnect();
    throw new CliFailure(`cannot serve HTTP on ${config.http.host}:${config.http.port}: ${err instanceof Error ? err.message : String(err)}`);
  });
  daemon.startFeeds();
  observability.watch(daemon);
  log.info({ role: opts.role, syncs: [...daemon.syncs.keys()], http: `${config.http.host}:${http.port}` }, 'tvsync running');
  await new Promise<void>((resolve) => {
    onStopSignal(log, daemon.options.shutdownGraceMs, (signal) => {
      log.info({ signal }, 'stopping: finishing running jobs');
      void (async () => {
        await daemon.stop();
        await observability.close();
        observeRedis.disconnect();
      })().then(resolve);
    });
  });
  log.info('stopped');
}
