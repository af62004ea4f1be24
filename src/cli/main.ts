#!/usr/bin/env node
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
import { ConfigError, configPath, loadConfig } from '../config/load.js';
import type { SyncConfig, TvsyncConfig } from '../config/schema.js';
import { SyncError } from '../model/failure.js';
import { collectSecrets, createLogger, type Logger } from '../observe/log.js';
import { SourceReadError } from '../connectors/source.js';
import { runEmulator } from '../emulator/run.js';
import { previewGroups, readAndPlan } from '../runtime/prepare.js';
import { connectRedis, describeRedisUrl, openRedis, RedisOutage, RedisUnavailable, verifyRedis } from '../runtime/redis.js';
import { buildSyncSides } from '../runtime/wiring.js';
import { renderGroupPhase, renderPlan } from './render-plan.js';
import { runDemo } from './demo.js';
import { renderValidation, validateSyncs } from './validate.js';
import { renderLogEntries } from './render-log.js';
import { ProvisioningLog } from '../observe/provisioning-log.js';
import { Observability } from '../runtime/observability.js';
import { Daemon } from '../runtime/daemon.js';
import { CycleStore } from '../runtime/cycle-store.js';
import { closeQueues, openQueues } from '../runtime/queues.js';
import { renderReport, type CycleReport } from '../runtime/report.js';
import { requestCycle, waitForCycleReport } from '../runtime/trigger.js';
import { HealthStore, isQuarantined } from '../runtime/health.js';
import { ApprovalStore } from '../store/approvals.js';
import { describePause, RateLimitPauseStore } from '../store/rate-limit-pause.js';

/** Exit codes: 0 done, 1 the work failed (IdP, TeamViewer, Redis), 2 the configuration or the call is wrong, 3 a cycle ran but some operations failed. */
export const EXIT = { ok: 0, failed: 1, usage: 2, partial: 3 } as const;

function exitCodeOf(reports: CycleReport[]): number {
  if (reports.some((r) => r.outcome === 'failed')) return EXIT.failed;
  if (reports.some((r) => r.outcome === 'partial')) return EXIT.partial;
  return EXIT.ok;
}

/** Connects to Redis or fails with a sentence an operator can act on (no answer, refused password, missing database). */
async function requireRedis(config: TvsyncConfig) {
  try {
    return await openRedis(config.redis.url, 5000);
  } catch (err) {
    throw new CliFailure(err instanceof Error ? err.message : String(err));
  }
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

export class CliFailure extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.failed,
  ) {
    super(message);
  }
}

interface Loaded {
  config: TvsyncConfig;
  log: Logger;
}

function load(flag: string | undefined): Loaded {
  const config = loadConfig(configPath(flag));
  // CLI output goes to stdout; logs go to stderr so `--json` stays parseable.
  const log = createLogger({ level: config.log.level, secrets: collectSecrets(config), destination: process.stderr.isTTY ? undefined : { write: (l: string) => void process.stderr.write(l) }, pretty: process.stderr.isTTY === true });
  return { config, log };
}

export function selectSyncs(config: TvsyncConfig, name: string | undefined): SyncConfig[] {
  if (!name) return config.syncs;
  const sync = config.syncs.find((s) => s.name === name);
  if (!sync) throw new CliFailure(`no sync named "${name}"; the config has ${config.syncs.map((s) => s.name).join(', ')}`, EXIT.usage);
  return [sync];
}

/** One sentence a person can act on, for any failure a command meets. */
export function explain(err: unknown): { message: string; exitCode: number } {
  if (err instanceof ConfigError) return { message: err.message, exitCode: EXIT.usage };
  if (err instanceof CliFailure) return { message: err.message, exitCode: err.exitCode };
  if (err instanceof SourceReadError) return { message: `the IdP read failed, nothing was changed: ${err.message}`, exitCode: EXIT.failed };
  if (err instanceof SyncError) {
    const hint =
      err.failureClass === 'unauthorised'
        ? ' (check the TeamViewer script token and its permissions: User management, view/create/edit users, and user groups)'
        : err.failureClass === 'transient'
          ? ' (is the TeamViewer base URL right and reachable?)'
          : '';
    return { message: `TeamViewer: ${err.message}${hint}; nothing was changed`, exitCode: EXIT.failed };
  }
  return { message: err instanceof Error ? err.message : String(err), exitCode: EXIT.failed };
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number');
  return n;
}

function ratio(value: string): number {
  const n = Number(value);
  if (!(n >= 0 && n <= 1)) throw new InvalidArgumentError('expected a number between 0 and 1');
  return n;
}

export function buildProgram(): Command {
  const program = new Command('tvsync')
    .description('Keeps TeamViewer users and groups in step with Entra ID, Okta, JumpCloud or a file export')
    .showHelpAfterError()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  program
    .command('plan')
    .description('read the IdP and TeamViewer and print what a cycle would do; writes nothing')
    .option('-c, --config <file>', 'configuration file (default: $TVSYNC_CONFIG)')
    .option('-s, --sync <name>', 'only this sync')
    .option('--json', 'print the plan as JSON')
    .action(async (opts: { config?: string; sync?: string; json?: boolean }) => {
      const { config, log } = load(opts.config);
      const syncs = selectSyncs(config, opts.sync);
      const redis = await openRedis(config.redis.url, 2000).catch((err: unknown) => {
        const unreachable = !(err instanceof RedisUnavailable) || err.kind === 'unreachable';
        log.warn({ redis: describeRedisUrl(config.redis.url), problem: err instanceof Error ? err.message : String(err) }, `${unreachable ? 'Redis does not answer' : 'Redis refuses the connection'}: planning without links (matching by e-mail only)`);
        return undefined;
      });
      try {
        const results = [];
        for (const sync of syncs) {
          // Someone is waiting at the terminal: a short retry, not the daemon's patient one.
          const sides = buildSyncSides(sync, { ...(redis ? { redis } : {}), prefix: config.redis.prefix, log, readBackoff: { attempts: 3, baseMs: 500, capMs: 2000 } });
          const prepared = await readAndPlan(sides);
          const groups = await previewGroups(sides, prepared);
          results.push({ sync: sync.name, plan: prepared.plan, groups });
          if (!opts.json) process.stdout.write(`${renderPlan(sync.name, prepared.plan)}\n\n${renderGroupPhase(groups)}\n\n`);
        }
        if (opts.json) process.stdout.write(`${JSON.stringify(results.length === 1 ? results[0] : results, null, 2)}\n`);
      } finally {
        redis?.disconnect();
      }
    });

  program
    .command('emulator')
    .description('run a local TeamViewer-compatible SCIM server to rehearse against')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('-p, --port <port>', 'port', positiveInt, 8080)
    .option('--token <token...>', 'accepted bearer tokens (default: $TVSYNC_EMULATOR_TOKEN)')
    .option('--owner <email>', 'the token owner, present as a company user')
    .option('--outside <email...>', 'addresses owned by TeamViewer accounts outside the company')
    .option('--latency <ms>', 'latency added to every request', positiveInt, 0)
    .option('--rate-limit <max/windowMs>', 'answer 429 above max requests per window, e.g. 50/1000')
    .option('--failure-rate <ratio>', 'share of requests answered with an injected 5xx', ratio, 0)
    .addOption(new Option('--failure-mode <mode>', 'whether an injected 5xx on a write comes before or after it is applied').choices(['before', 'after', 'mixed']).default('mixed'))
    .option('--seed <n>', 'seed for injected failures', positiveInt, 1)
    .option('--no-groups', 'answer /Groups with 404, like a tenant without group support')
    .option('--state <file>', 'load this JSON state at start')
    .option('--dump-on-exit <file>', 'write the state as JSON here on SIGINT/SIGTERM')
    .action(async (opts: { host: string; port: number; token?: string[]; owner?: string; outside?: string[]; latency: number; rateLimit?: string; failureRate: number; failureMode: 'before' | 'after' | 'mixed'; seed: number; groups: boolean; state?: string; dumpOnExit?: string }) => {
      const tokens = opts.token ?? (process.env.TVSYNC_EMULATOR_TOKEN ? [process.env.TVSYNC_EMULATOR_TOKEN] : []);
      if (tokens.length === 0) throw new CliFailure('give --token or set TVSYNC_EMULATOR_TOKEN', EXIT.usage);
      let rateLimit: { max: number; windowMs: number } | undefined;
      if (opts.rateLimit) {
        const match = /^(\d+)\/(\d+)$/.exec(opts.rateLimit);
        if (!match) throw new CliFailure('--rate-limit takes max/windowMs, e.g. 50/1000', EXIT.usage);
        rateLimit = { max: Number(match[1]), windowMs: Number(match[2]) };
      }
      await runEmulator(
        {
          tokens,
          port: opts.port,
          host: opts.host,
          latencyMs: opts.latency,
          failureRate: opts.failureRate,
          failureMode: opts.failureMode,
          seed: opts.seed,
          groups: opts.groups,
          ...(opts.owner ? { owner: { email: opts.owner, name: opts.owner.split('@')[0] ?? opts.owner } } : {}),
          ...(opts.outside ? { outsideEmails: opts.outside } : {}),
          ...(rateLimit ? { rateLimit } : {}),
          ...(opts.state ? { stateFile: opts.state } : {}),
          ...(opts.dumpOnExit ? { dumpOnExit: opts.dumpOnExit } : {}),
        },
        (line) => process.stdout.write(`${line}\n`),
      );
    });

  program
    .command('run')
    .description('run the daemon: scheduled cycles and workers (or one cycle with --once)')
    .option('-c, --config <file>', 'configuration file (default: $TVSYNC_CONFIG)')
    .addOption(new Option('--role <role>', 'what this process does').choices(['all', 'scheduler', 'worker']).default('all'))
    .option('--once', 'run one full cycle with in-process workers, print its report and exit (0 ok, 1 failed, 3 some operations failed)')
    .option('-s, --sync <name>', 'with --once: only this sync')
    .action(async (opts: { config?: string; role: 'all' | 'scheduler' | 'worker'; once?: boolean; sync?: string }) => {
      const { config, log } = load(opts.config);
      const syncs = selectSyncs(config, opts.once ? opts.sync : undefined).map((s) => s.name);
      // One log line per Redis outage across every connection of the process; this one reconnects like the daemon's.
      const outage = new RedisOutage(log, config.redis.url);
      const observeRedis = connectRedis(config.redis.url, 'producer', outage);
      await verifyRedis(observeRedis, config.redis.url, 5000).catch((err: unknown) => {
        observeRedis.disconnect();
        throw new CliFailure(err instanceof Error ? err.message : String(err));
      });
      const observability = new Observability(config, observeRedis, log);
      if (opts.once) {
        const daemon = await Daemon.start(config, log, { scheduler: false, worker: true, syncs, outage, ...observability.hooks() }).catch((err: unknown) => {
          observeRedis.disconnect();
          throw err;
        });
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
            if (!report && stopped.signal.aborted) throw new CliFailure(`stopped by a signal before the cycle of sync ${name} finished; it was handed back to the queue`);
            if (!report) throw new CliFailure(`no report for sync ${name}: the cycle did not finish`);
            reports.push(report);
            process.stdout.write(`${renderReport(report)}\n`);
          }
          process.exitCode = exitCodeOf(reports);
        } finally {
          await daemon.stop();
          observeRedis.disconnect();
        }
        return;
      }
      const daemon = await Daemon.start(config, log, { scheduler: opts.role !== 'worker', worker: opts.role !== 'scheduler', outage, ...observability.hooks() }).catch((err: unknown) => {
        observeRedis.disconnect();
        throw err;
      });
      const http = await observability.serve(daemon).catch(async (err: unknown) => {
        // No health endpoint means no way to watch it: do not run blind.
        await daemon.stop();
        observeRedis.disconnect();
        throw new CliFailure(`cannot serve HTTP on ${config.http.host}:${config.http.port}: ${err instanceof Error ? err.message : String(err)}`);
      });
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
    });

  program
    .command('sync-now')
    .description('ask the running deployment for a cycle now (presses during a cycle collapse into one follow-up)')
    .option('-c, --config <file>', 'configuration file (default: $TVSYNC_CONFIG)')
    .option('-s, --sync <name>', 'only this sync (default: all)')
    .option('--wait', "wait for the cycle, print its report, exit non-zero if it failed")
    .option('--timeout <seconds>', 'with --wait: give up after this long', positiveInt, 3600)
    .action(async (opts: { config?: string; sync?: string; wait?: boolean; timeout: number }) => {
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
    });

  program
    .command('healthcheck')
    .description("ask this host's tvsync for /healthz (the container's HEALTHCHECK)")
    .option('-c, --config <file>', 'configuration file (default: $TVSYNC_CONFIG)')
    .action(async (opts: { config?: string }) => {
      const config = loadConfig(configPath(opts.config));
      const url = `http://127.0.0.1:${config.http.port}/healthz`;
      const answer = await fetch(url, { signal: AbortSignal.timeout(5000) }).catch((err: unknown) => {
        throw new CliFailure(`${url} does not answer: ${err instanceof Error ? err.message : String(err)}`);
      });
      if (!answer.ok) throw new CliFailure(`${url} answered ${answer.status}`);
      process.stdout.write('ok\n');
    });

  program
    .command('validate')
    .description("test the connection to each sync's IdP and TeamViewer, like the IdPs' Test connection button; writes nothing")
    .option('-c, --config <file>', 'configuration file (default: $TVSYNC_CONFIG)')
    .option('-s, --sync <name>', 'only this sync')
    .action(async (opts: { config?: string; sync?: string }) => {
      const { config, log } = load(opts.config);
      const results = await validateSyncs(config, selectSyncs(config, opts.sync), { log });
      process.stdout.write(`${renderValidation(results)}\n`);
      process.exitCode = results.every((r) => r.ok) ? EXIT.ok : EXIT.failed;
    });

  program
    .command('log')
    .description('show the provisioning log: every operation and skip, newest first')
    .option('-c, --config <file>', 'configuration file (default: $TVSYNC_CONFIG)')
    .option('-s, --sync <name>', 'only this sync (default: all)')
    .option('-u, --user <email>', 'only entries about this address')
    .option('--cycle <id>', 'only entries of this cycle')
    .option('-n, --limit <count>', 'at most this many entries per sync', positiveInt, 100)
    .option('--json', 'print JSON')
    .action(async (opts: { config?: string; sync?: string; user?: string; cycle?: string; limit: number; json?: boolean }) => {
      const { config } = load(opts.config);
      const redis = await requireRedis(config);
      try {
        const out = [];
        for (const sync of selectSyncs(config, opts.sync)) {
          const entries = await new ProvisioningLog(redis, config.redis.prefix, sync.name).query({ limit: opts.limit, ...(opts.user ? { email: opts.user } : {}), ...(opts.cycle ? { cycleId: opts.cycle } : {}) });
          out.push({ sync: sync.name, entries });
        }
        if (opts.json) process.stdout.write(`${JSON.stringify(out.length === 1 ? out[0] : out, null, 2)}\n`);
        else for (const { sync, entries } of out) process.stdout.write(`sync ${sync}: ${entries.length} entries\n${renderLogEntries(entries)}${entries.length ? '\n' : ''}`);
      } finally {
        redis.disconnect();
      }
    });

  program
    .command('demo')
    .description('sync the export in config/demo into a local TeamViewer emulator through the real queue and workers')
    .option('--redis <url>', 'Redis to use (a temporary local redis-server is started when none answers)', process.env.TVSYNC_REDIS_URL ?? 'redis://127.0.0.1:6379')
    .action(async (opts: { redis: string }) => {
      const log = createLogger({ level: 'warn', destination: { write: (l: string) => void process.stderr.write(l) }, pretty: false });
      const reports = await runDemo({ redisUrl: opts.redis, log, print: (line) => process.stdout.write(`${line}\n`) });
      process.exitCode = reports.some((r) => r.outcome === 'failed') ? EXIT.failed : EXIT.ok;
    });

  program
    .command('approve')
    .description('release the deactivations, group deletions and member removals a cycle held at the thresholds; they run in a cycle started now')
    .option('-c, --config <file>', 'configuration file (default: $TVSYNC_CONFIG)')
    .requiredOption('-s, --sync <name>', 'the sync')
    .requiredOption('--cycle <id>', 'the cycle whose held operations are approved (see tvsync status)')
    .action(async (opts: { config?: string; sync: string; cycle: string }) => {
      const { config } = load(opts.config);
      const [sync] = selectSyncs(config, opts.sync);
      const redis = await requireRedis(config);
      try {
        const cycle = await new CycleStore(redis, config.redis.prefix, sync!.name).load(opts.cycle);
        if (!cycle?.plan) throw new CliFailure(`sync ${sync!.name} has no stored cycle ${opts.cycle} (cycles are kept 3 days; tvsync status lists recent ones)`, EXIT.usage);
        const users = cycle.plan.held.map((op) => op.tvUserId);
        const groupPlan = cycle.groupPhase?.status === 'synced' ? cycle.groupPhase.plan : undefined;
        const groups = groupPlan ? groupPlan.held.map((op) => op.tvGroupId) : [];
        // Approved per group; absent in cycles stored before member removals could be held.
        const heldRemovals = groupPlan?.heldMemberRemovals ?? [];
        const removalGroups = heldRemovals.map((h) => h.tvGroupId);
        const members = heldRemovals.reduce((n, h) => n + h.members, 0);
        if (users.length === 0 && groups.length === 0 && removalGroups.length === 0) throw new CliFailure(`cycle ${opts.cycle} held nothing for approval`, EXIT.usage);
        await new ApprovalStore(redis, config.redis.prefix, sync!.name).approve(users, groups, removalGroups);
        const queues = openQueues(sync!.name, redis, config.redis.prefix);
        try {
          await requestCycle(queues.cycles, sync!.name);
        } finally {
          await closeQueues(queues);
        }
        process.stdout.write(`approved ${users.length} deactivations, ${groups.length} group deletions and ${members} member removals in ${removalGroups.length} group(s) held by cycle ${opts.cycle}; a cycle was requested to run them (those no longer needed are not done)\n`);
      } finally {
        redis.disconnect();
      }
    });

  program
    .command('status')
    .description("show each sync's schedule, queue and last cycle reports")
    .option('-c, --config <file>', 'configuration file (default: $TVSYNC_CONFIG)')
    .option('-s, --sync <name>', 'only this sync')
    .option('-n, --last <count>', 'how many reports per sync', positiveInt, 3)
    .option('--json', 'print JSON')
    .action(async (opts: { config?: string; sync?: string; last: number; json?: boolean }) => {
      const { config } = load(opts.config);
      const redis = await requireRedis(config);
      const out = [];
      try {
        for (const sync of selectSyncs(config, opts.sync)) {
          const queues = openQueues(sync.name, redis, config.redis.prefix);
          try {
            const [scheduler, cycleCounts, operationCounts, reports, health, pause] = await Promise.all([
              queues.cycles.getJobScheduler(`cycle-${sync.name}`),
              queues.cycles.getJobCounts('active', 'waiting', 'delayed'),
              queues.operations.getJobCounts('active', 'waiting', 'delayed', 'failed'),
              new CycleStore(redis, config.redis.prefix, sync.name).reports(opts.last),
              new HealthStore(redis, config.redis.prefix, sync.name).load(),
              new RateLimitPauseStore(redis, config.redis.prefix, sync.name).current(Date.now()),
            ]);
            const quarantined = isQuarantined(health, Date.now());
            out.push({ sync: sync.name, nextCycleAt: scheduler?.next ? new Date(scheduler.next).toISOString() : null, every: sync.schedule.every, quarantined, health, pause: pause ?? null, cycles: cycleCounts, operations: operationCounts, reports });
          } finally {
            await closeQueues(queues);
          }
        }
      } finally {
        redis.disconnect();
      }
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
        return;
      }
      for (const s of out) {
        process.stdout.write(`sync ${s.sync}: next cycle ${s.nextCycleAt ?? 'not scheduled (is a daemon with the scheduler role running?)'}; cycles active ${s.cycles.active ?? 0}, waiting ${(s.cycles.waiting ?? 0) + (s.cycles.delayed ?? 0)}; operations active ${s.operations.active ?? 0}, waiting ${(s.operations.waiting ?? 0) + (s.operations.delayed ?? 0)}\n`);
        if (s.pause) process.stdout.write(`  ${describePause(s.pause)}\n`);
        if (s.quarantined) process.stdout.write(`  QUARANTINED until ${new Date(s.health.quarantinedUntil ?? 0).toISOString()}: ${s.health.reason ?? ''}; fix the cause, then tvsync sync-now --sync ${s.sync}\n`);
        if (s.reports.length === 0) process.stdout.write('  no cycle has finished yet\n');
        for (const report of s.reports) process.stdout.write(`${renderReport(report, { maxItems: 10 }).replace(/^/gm, '  ')}\n`);
      }
    });

  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return EXIT.ok;
  } catch (err) {
    const { message, exitCode } = explain(err);
    process.stderr.write(`tvsync: ${message}\n`);
    return exitCode;
  }
}

function invokedDirectly(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    // Through npm's bin link the script path is a symlink to this file.
    return realpathSync(script) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (invokedDirectly()) {
  main(process.argv).then((code) => {
    if (code !== EXIT.ok) process.exitCode = code;
  });
}
