import { approveCycle, approveFastLane } from '../../runtime/approve.js';
import { load, requireRedis, selectSyncs } from '../context.js';
import { CliFailure, EXIT } from '../exit.js';
import { printJson } from '../json.js';

export interface ApproveOptions {
  config?: string;
  sync: string;
  cycle?: string;
  fastLane?: boolean;
  json?: boolean;
}

/** `tvsync approve`: releases what a cycle held at the thresholds, to run in a cycle started now. */
export async function approveCommand(opts: ApproveOptions): Promise<void> {
  const { config } = load(opts.config);
  const [sync] = selectSyncs(config, opts.sync);
  if (!sync) throw new CliFailure(`no sync named "${opts.sync}"`, EXIT.usage);
  if ((opts.cycle === undefined) === (opts.fastLane !== true)) throw new CliFailure('give either --cycle ID or --fast-lane', EXIT.usage);
  const redis = await requireRedis(config);
  try {
    if (opts.fastLane) {
      const released = await approveFastLane(redis, config.redis.prefix, sync.name);
      if (released.deactivations + released.recycledAddresses === 0)
        throw new CliFailure(`the fast lane of sync ${sync.name} holds nothing for approval`, EXIT.usage);
      if (opts.json) return printJson({ syncs: [{ sync: sync.name, fastLane: true, approved: released }] });
      const recycled = released.recycledAddresses ? ` and ${released.recycledAddresses} recycled addresses` : '';
      process.stdout.write(
        `approved ${released.deactivations} deactivations${recycled} the fast lane held (${released.emails.join(', ')}); each person is synced again now (one whose state changed since is not deactivated)\n`,
      );
      return;
    }
    const cycle = opts.cycle ?? '';
    const approved = await approveCycle(redis, config.redis.prefix, sync.name, cycle);
    if (approved.status === 'no-cycle')
      throw new CliFailure(`sync ${sync.name} has no stored cycle ${opts.cycle} (cycles are kept 3 days; tvsync status lists recent ones)`, EXIT.usage);
    if (approved.status === 'nothing-held') throw new CliFailure(`cycle ${opts.cycle} held nothing for approval`, EXIT.usage);
    if (opts.json) return printJson({ syncs: [{ sync: sync.name, cycleId: cycle, approved }] });
    const recycled = approved.recycledAddresses ? `, ${approved.recycledAddresses} recycled addresses (reactivated and linked to the new IdP user)` : '';
    process.stdout.write(
      `approved ${approved.deactivations} deactivations, ${approved.groupDeletions} group deletions and ${approved.memberRemovals} member removals in ${approved.memberRemovalGroups} group(s)${recycled} held by cycle ${opts.cycle}; a cycle was requested to run them (those no longer needed are not done)\n`,
    );
  } finally {
    redis.disconnect();
  }
}
