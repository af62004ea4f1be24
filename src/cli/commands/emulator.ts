import { runEmulator } from '../../emulator/run.js';
import { CliFailure, EXIT } from '../exit.js';

export interface EmulatorOptions {
  host: string;
  port: number;
  token?: string[];
  owner?: string;
  outside?: string[];
  latency: number;
  rateLimit?: string;
  failureRate: number;
  failureMode: 'before' | 'after' | 'mixed';
  seed: number;
  groups: boolean;
  state?: string;
  dumpOnExit?: string;
}

/** `tvsync emulator`: a local TeamViewer-compatible SCIM server to rehearse against. */
export async function emulatorCommand(opts: EmulatorOptions): Promise<void> {
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
}
