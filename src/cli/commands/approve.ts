import { CycleStore } from '../../runtime/cycle-store.js';
import { closeQueues, openQueues } from '../../runtime/queues.js';
import { requestCycle } from '../../runtime/trigger.js';
import { ApprovalStore } from '../../store/approvals.js';
import { load, requireRedis, selectSyncs } from '../context.js';
import { CliFailure, EXIT } from '../exit.js';

export interface ApproveOptions {
  config?: string;
  sync: string;
  cycle: string;
}

/** `tvsync approve`: releases what a cycle held at the thresholds, to run in a cycle started now. */
export async function approveCommand(opts: ApproveOptions): Promise<void> {
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
}
