import type { Redis } from 'ioredis';
import type { KeyPrefix } from '../store/keys.js';
import { ApprovalStore } from '../store/approvals.js';
import { CycleStore } from '../store/cycle-store.js';
import { closeQueues, openQueues } from './queues.js';
import { requestCycle } from './trigger.js';
import { FastLaneStore } from '../store/fast-lane.js';
import { queueHints } from './fast-lane.js';

/** What `tvsync approve` released, or why it released nothing. */
export type ApproveOutcome =
  | { status: 'no-cycle' }
  | { status: 'nothing-held' }
  | { status: 'approved'; deactivations: number; groupDeletions: number; memberRemovals: number; memberRemovalGroups: number; recycledAddresses: number };

/**
 * Releases the deactivations, group deletions and member removals a stored cycle held at the
 * thresholds, and the recycled addresses it held, and asks for a cycle to run them (those no
 * longer needed then are not done).
 */
export async function approveCycle(redis: Redis, prefix: KeyPrefix, sync: string, cycleId: string): Promise<ApproveOutcome> {
  const cycle = await new CycleStore(redis, prefix, sync).load(cycleId);
  if (!cycle?.plan) return { status: 'no-cycle' };
  const users = cycle.plan.held.map((op) => op.tvUserId);
  const groupPlan = cycle.groupPhase?.status === 'synced' ? cycle.groupPhase.plan : undefined;
  const groups = groupPlan ? groupPlan.held.map((op) => op.tvGroupId) : [];
  // Approved per group; absent in cycles stored before member removals could be held.
  const heldRemovals = groupPlan?.heldMemberRemovals ?? [];
  const removalGroups = heldRemovals.map((h) => h.tvGroupId);
  // Recycled addresses the cycle held (skipped with their reason), approved by TeamViewer user id.
  const recycled = [...new Set(cycle.plan.skipped.flatMap((s) => (s.reason === 'recycled-address' && s.tvUserId !== undefined ? [s.tvUserId] : [])))];
  if (users.length === 0 && groups.length === 0 && removalGroups.length === 0 && recycled.length === 0) return { status: 'nothing-held' };
  const approvals = new ApprovalStore(redis, prefix, sync);
  await approvals.approve(users, groups, heldRemovals);
  await approvals.approveRecycled(recycled);
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
    recycledAddresses: recycled.length,
  };
}

/**
 * Releases every deactivation the fast lane held at its sliding-window threshold and every
 * recycled address it held, and queues a user sync for each person so it runs now (one whose
 * state changed since is re-read, not forced).
 */
export async function approveFastLane(
  redis: Redis,
  prefix: KeyPrefix,
  sync: string,
): Promise<{ deactivations: number; recycledAddresses: number; emails: string[] }> {
  const fastLane = new FastLaneStore(redis, prefix, sync);
  const held = await fastLane.held();
  if (held.length === 0) return { deactivations: 0, recycledAddresses: 0, emails: [] };
  const recycled = held.filter((h) => h.kind === 'recycled-address');
  const deactivations = held.filter((h) => h.kind !== 'recycled-address');
  const approvals = new ApprovalStore(redis, prefix, sync);
  await approvals.approve(
    deactivations.map((h) => h.tvUserId),
    [],
  );
  await approvals.approveRecycled(recycled.map((h) => h.tvUserId));
  await fastLane.releaseHeld(held.map((h) => h.tvUserId));
  const queues = openQueues(sync, redis, prefix);
  try {
    await queueHints(
      held.map((h) => ({ userId: h.sourceId, atMs: Date.now(), what: 'approved' })),
      { feed: 'approval', trigger: 'manual', operations: queues.operations, cycles: queues.cycles, sync, detectedAtMs: Date.now() },
    );
  } finally {
    await closeQueues(queues);
  }
  return { deactivations: deactivations.length, recycledAddresses: recycled.length, emails: held.map((h) => h.email) };
}
