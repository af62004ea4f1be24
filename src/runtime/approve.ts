import type { Redis } from 'ioredis';
import { ApprovalStore } from '../store/approvals.js';
import { CycleStore } from '../store/cycle-store.js';
import { closeQueues, openQueues } from './queues.js';
import { requestCycle } from './trigger.js';

/** What `tvsync approve` released, or why it released nothing. */
export type ApproveOutcome =
  | { status: 'no-cycle' }
  | { status: 'nothing-held' }
  | { status: 'approved'; deactivations: number; groupDeletions: number; memberRemovals: number; memberRemovalGroups: number };

/**
 * Releases the deactivations, group deletions and member removals a stored cycle held at the
 * thresholds, and asks for a cycle to run them (those no longer needed then are not done).
 */
export async function approveCycle(redis: Redis, prefix: string, sync: string, cycleId: string): Promise<ApproveOutcome> {
  const cycle = await new CycleStore(redis, prefix, sync).load(cycleId);
  if (!cycle?.plan) return { status: 'no-cycle' };
  const users = cycle.plan.held.map((op) => op.tvUserId);
  const groupPlan = cycle.groupPhase?.status === 'synced' ? cycle.groupPhase.plan : undefined;
  const groups = groupPlan ? groupPlan.held.map((op) => op.tvGroupId) : [];
  // Approved per group; absent in cycles stored before member removals could be held.
  const heldRemovals = groupPlan?.heldMemberRemovals ?? [];
  const removalGroups = heldRemovals.map((h) => h.tvGroupId);
  if (users.length === 0 && groups.length === 0 && removalGroups.length === 0) return { status: 'nothing-held' };
  await new ApprovalStore(redis, prefix, sync).approve(users, groups, heldRemovals);
  const queues = openQueues(sync, redis, prefix);
  try {
    await requestCycle(queues.cycles, sync);
  } finally {
    await closeQueues(queues);
  }
  return {
    status: 'approved',
    deactivations: users.length,
    groupDeletions: groups.length,
    memberRemovals: heldRemovals.reduce((n, h) => n + h.members, 0),
    memberRemovalGroups: removalGroups.length,
  };
}
