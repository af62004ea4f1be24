import { ProvisioningLog } from '../../observe/provisioning-log.js';
import { syncKeys } from '../../store/keys.js';
import { load, requireRedis, selectSyncs } from '../context.js';
import { printJson } from '../json.js';
import { renderLogEntries } from '../render-log.js';

export interface LogOptions {
  config?: string;
  sync?: string;
  user?: string;
  cycle?: string;
  limit: number;
  json?: boolean;
}

/** `tvsync log`: the provisioning log, newest first. */
export async function logCommand(opts: LogOptions): Promise<void> {
  const { config } = load(opts.config);
  const redis = await requireRedis(config);
  try {
    const out = [];
    for (const sync of selectSyncs(config, opts.sync)) {
      const entries = await new ProvisioningLog(redis, syncKeys(config.redis.prefix, sync.name).provisioningLog).query({
        limit: opts.limit,
        ...(opts.user ? { email: opts.user } : {}),
        ...(opts.cycle ? { cycleId: opts.cycle } : {}),
      });
      out.push({ sync: sync.name, entries });
    }
    if (opts.json) printJson({ syncs: out });
    else
      for (const { sync, entries } of out)
        process.stdout.write(`sync ${sync}: ${entries.length} entries\n${renderLogEntries(entries)}${entries.length ? '\n' : ''}`);
  } finally {
    redis.disconnect();
  }
}
