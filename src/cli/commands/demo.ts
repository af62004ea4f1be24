import { createLogger } from '../../observe/log.js';
import { runDemo } from '../demo.js';
import { EXIT } from '../exit.js';

export interface DemoOptions {
  redis: string;
}

/** `tvsync demo`: syncs the export in config/demo into a local TeamViewer emulator through the real queue and workers. */
export async function demoCommand(opts: DemoOptions): Promise<void> {
  const log = createLogger({ level: 'warn', destination: { write: (l: string) => void process.stderr.write(l) }, pretty: false });
  const reports = await runDemo({ redisUrl: opts.redis, log, print: (line) => process.stdout.write(`${line}\n`) });
  process.exitCode = reports.some((r) => r.outcome === 'failed') ? EXIT.failed : EXIT.ok;
}
