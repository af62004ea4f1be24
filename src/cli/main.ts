#!/usr/bin/env node
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
import { ConfigError, configPath, loadConfig } from '../config/load.js';
import type { SyncConfig, TvsyncConfig } from '../config/schema.js';
import { SyncError } from '../model/failure.js';
import { collectSecrets, createLogger, type Logger } from '../observe/log.js';
import { SourceReadError } from '../sources/source.js';
import { runEmulator } from '../teamviewer/emulator.js';
import { readAndPlan } from '../runtime/prepare.js';
import { describeRedisUrl, tryRedis } from '../runtime/redis.js';
import { buildSyncSides } from '../runtime/wiring.js';
import { renderPlan } from './render-plan.js';

/** Exit codes: 0 done, 1 the work failed (IdP, TeamViewer, Redis), 2 the configuration or the call is wrong. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

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
      const redis = await tryRedis(config.redis.url);
      if (!redis) log.warn({ redis: describeRedisUrl(config.redis.url) }, 'Redis does not answer: planning without links (matching by e-mail only)');
      try {
        const results = [];
        for (const sync of syncs) {
          const sides = buildSyncSides(sync, { ...(redis ? { redis } : {}), prefix: config.redis.prefix, log });
          const { plan } = await readAndPlan(sides);
          results.push({ sync: sync.name, plan });
          if (!opts.json) process.stdout.write(`${renderPlan(sync.name, plan)}\n\n`);
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
