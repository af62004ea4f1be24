#!/usr/bin/env node
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import type { ApproveOptions } from './commands/approve.js';
import type { DemoOptions } from './commands/demo.js';
import type { EmulatorOptions } from './commands/emulator.js';
import type { HealthcheckOptions } from './commands/healthcheck.js';
import type { LogOptions } from './commands/log.js';
import type { PlanOptions } from './commands/plan.js';
import type { RunOptions } from './commands/run.js';
import type { StatusOptions } from './commands/status.js';
import type { SyncNowOptions } from './commands/sync-now.js';
import type { SyncUserOptions } from './commands/sync-user.js';
import type { ValidateOptions } from './commands/validate.js';
import { EXIT } from './exit.js';

// Only commander is loaded up front: each command loads its own modules when it runs, so `--help`
// and the container's `healthcheck` do not pay for the SDKs, BullMQ and Redis the daemon needs.

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

/** The version of the installed package (package.json sits two levels above src/cli and dist/cli). */
function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

export function buildProgram(): Command {
  const program = new Command('tvsync')
    .description('Keeps TeamViewer users and groups in step with Entra ID, Okta, JumpCloud or a file export')
    .version(packageVersion(), '-V, --version', 'print the version and exit')
    .showHelpAfterError()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  program
    .command('plan')
    .description('read the IdP and TeamViewer and print what a cycle would do; writes nothing')
    .option('-c, --config <file>', 'configuration file (default: $TVSYNC_CONFIG)')
    .option('-s, --sync <name>', 'only this sync')
    .option('--json', 'print the plan as JSON')
    .action(async (opts: PlanOptions) => (await import('./commands/plan.js')).planCommand(opts));

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
    .addOption(
      new Option('--failure-mode <mode>', 'whether an injected 5xx on a write comes before or after it is applied')
        .choices(['before', 'after', 'mixed'])
        .default('mixed'),
    )
    .option('--seed <n>', 'seed for injected failures', positiveInt, 1)
    .option('--no-groups', 'answer /Groups with 404, like a tenant without group support')
    .option('--state <file>', 'load this JSON state at start')
    .option('--dump-on-exit <file>', 'write the state as JSON here on SIGINT/SIGTERM')
    .action(async (opts: EmulatorOptions) => (await import('./commands/emulator.js')).emulatorCommand(opts));

  program
    .command('run')
    .description('run the daemon: scheduled cycles and workers (or one cycle with --once)')
    .option('-c, --config <file>', 'configuration file (default: $TVSYNC_CONFIG)')
    .addOption(new Option('--role <role>', 'what this process does').choices(['all', 'scheduler', 'worker']).default('all'))
    .option('--once', 'run one full cycle with in-process workers, print its report and exit (0 ok, 1 failed, 3 some operations failed)')
    .option('-s, --sync <name>', 'with --once: only this sync')
    .option('--json', 'with --once: print the reports as JSON')
    .action(async (opts: RunOptions) => (await import('./commands/run.js')).runCommand(opts));

  program
    .command('sync-now')
    .description('ask the running deployment for a cycle now (presses during a cycle collapse into one follow-up)')
    .option('-c, --config <file>', 'configuration file (default: $TVSYNC_CONFIG)')
    .option('-s, --sync <name>', 'only this sync (default: all)')
    .option('--wait', 'wait for the cycle, print its report, exit non-zero if it failed')
    .option('--timeout <seconds>', 'with --wait: give up after this long', positiveInt, 3600)
    .option('--json', 'print the queued cycles (and with --wait their reports) as JSON')
    .action(async (opts: SyncNowOptions) => (await import('./commands/sync-now.js')).syncNowCommand(opts));

  program
    .command('sync-user')
    .description('sync one person now (by e-mail or IdP id) and print each step: what the IdP holds, scope, mapping, TeamViewer, link, decision')
    .argument('<user>', 'e-mail address or IdP user id')
    .option('-c, --config <file>', 'configuration file (default: $TVSYNC_CONFIG)')
    .option('-s, --sync <name>', 'the sync (needed when the config has more than one)')
    .option('--dry-run', 'show what would be done; write nothing')
    .option('--json', 'print the step report as JSON')
    .action(async (user: string, opts: SyncUserOptions) => (await import('./commands/sync-user.js')).syncUserCommand(user, opts));

  program
    .command('healthcheck')
    .description("ask this host's tvsync for /healthz (the container's HEALTHCHECK)")
    .option('-c, --config <file>', 'configuration file (default: $TVSYNC_CONFIG)')
    .action(async (opts: HealthcheckOptions) => (await import('./commands/healthcheck.js')).healthcheckCommand(opts));

  program
    .command('validate')
    .description("test the connection to each sync's IdP and TeamViewer, like the IdPs' Test connection button; writes nothing")
    .option('-c, --config <file>', 'configuration file (default: $TVSYNC_CONFIG)')
    .option('-s, --sync <name>', 'only this sync')
    .action(async (opts: ValidateOptions) => (await import('./commands/validate.js')).validateCommand(opts));

  program
    .command('log')
    .description('show the provisioning log: every operation and skip, newest first')
    .option('-c, --config <file>', 'configuration file (default: $TVSYNC_CONFIG)')
    .option('-s, --sync <name>', 'only this sync (default: all)')
    .option('-u, --user <email>', 'only entries about this address')
    .option('--cycle <id>', 'only entries of this cycle')
    .option('-n, --limit <count>', 'at most this many entries per sync', positiveInt, 100)
    .option('--json', 'print JSON')
    .action(async (opts: LogOptions) => (await import('./commands/log.js')).logCommand(opts));

  program
    .command('demo')
    .description('sync the export in config/demo into a local TeamViewer emulator through the real queue and workers')
    .option(
      '--redis <url>',
      'Redis to use (a temporary local redis-server is started when none answers)',
      process.env.TVSYNC_REDIS_URL ?? 'redis://127.0.0.1:6379',
    )
    .action(async (opts: DemoOptions) => (await import('./commands/demo.js')).demoCommand(opts));

  program
    .command('approve')
    .description('release the deactivations, group deletions and member removals a cycle held at the thresholds; they run in a cycle started now')
    .option('-c, --config <file>', 'configuration file (default: $TVSYNC_CONFIG)')
    .requiredOption('-s, --sync <name>', 'the sync')
    .option('--cycle <id>', 'the cycle whose held operations are approved (see tvsync status)')
    .option('--fast-lane', 'approve the deactivations the fast lane held at its sliding-window threshold (see tvsync status)')
    .option('--json', 'print what was approved as JSON')
    .action(async (opts: ApproveOptions) => (await import('./commands/approve.js')).approveCommand(opts));

  program
    .command('status')
    .description("show each sync's schedule, queue and last cycle reports")
    .option('-c, --config <file>', 'configuration file (default: $TVSYNC_CONFIG)')
    .option('-s, --sync <name>', 'only this sync')
    .option('-n, --last <count>', 'how many reports per sync', positiveInt, 3)
    .option('--json', 'print JSON')
    .action(async (opts: StatusOptions) => (await import('./commands/status.js')).statusCommand(opts));

  // Usage errors (unknown option, missing argument, bad value) end with exit code 2 in every
  // subcommand, not commander's default 1, so a script can tell a wrong call from a failed one.
  for (const command of [program, ...program.commands]) command.exitOverride();
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has printed its message (and the help) already; --help and --version end here too.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    const { explain } = await import('./explain.js');
    const { scrubSecrets } = await import('../net/secrets.js');
    const { message, exitCode } = explain(err);
    process.stderr.write(`tvsync: ${scrubSecrets(message)}\n`);
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
