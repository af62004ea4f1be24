import { configPath, loadConfig } from '../config/load.js';
import type { SyncConfig, TvsyncConfig } from '../config/schema.js';
import { collectSecrets, createLogger, type Logger } from '../observe/log.js';
import { openRedis } from '../runtime/redis.js';
import { CliFailure, EXIT } from './exit.js';

/** What most commands start from: the configuration and a logger that scrubs its secrets. */
export interface Loaded {
  config: TvsyncConfig;
  log: Logger;
}

export function load(flag: string | undefined): Loaded {
  const config = loadConfig(configPath(flag));
  // CLI output goes to stdout; logs go to stderr so `--json` stays parseable.
  const log = createLogger({
    level: config.log.level,
    secrets: collectSecrets(config),
    destination: process.stderr.isTTY ? undefined : { write: (l: string) => void process.stderr.write(l) },
    pretty: process.stderr.isTTY === true,
  });
  return { config, log };
}

export function selectSyncs(config: TvsyncConfig, name: string | undefined): SyncConfig[] {
  if (!name) return config.syncs;
  const sync = config.syncs.find((s) => s.name === name);
  if (!sync) throw new CliFailure(`no sync named "${name}"; the config has ${config.syncs.map((s) => s.name).join(', ')}`, EXIT.usage);
  return [sync];
}

/** Connects to Redis or fails with a sentence an operator can act on (no answer, refused password, missing database). */
export async function requireRedis(config: TvsyncConfig) {
  try {
    return await openRedis(config.redis, 5000);
  } catch (err) {
    throw new CliFailure(err instanceof Error ? err.message : String(err));
  }
}
