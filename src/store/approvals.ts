import type { Redis } from 'ioredis';
import { syncKeys } from './keys.js';

/** Approvals live a week: an approval for a plan long gone should not release anything. */
const APPROVAL_TTL_S = 7 * 86_400;

/**
 * Deactivations, group deletions and member removals a person released from their thresholds
 * (`tvsync approve`). Member removals are approved per TeamViewer group. The next cycle lets them
 * through; each is forgotten once the plan that read it has run.
 */
export class ApprovalStore {
  private readonly users: string;
  private readonly groups: string;
  private readonly members: string;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    sync: string,
  ) {
    const keys = syncKeys(prefix, sync);
    this.users = keys.approvedDeactivations;
    this.groups = keys.approvedGroupDeletions;
    this.members = keys.approvedMemberRemovals;
  }

  async approve(tvUserIds: readonly string[], tvGroupIds: readonly string[], memberRemovalGroupIds: readonly string[] = []): Promise<void> {
    const tx = this.redis.multi();
    if (tvUserIds.length) tx.sadd(this.users, ...tvUserIds).expire(this.users, APPROVAL_TTL_S);
    if (tvGroupIds.length) tx.sadd(this.groups, ...tvGroupIds).expire(this.groups, APPROVAL_TTL_S);
    if (memberRemovalGroupIds.length) tx.sadd(this.members, ...memberRemovalGroupIds).expire(this.members, APPROVAL_TTL_S);
    await tx.exec();
  }

  async deactivations(): Promise<Set<string>> {
    return new Set(await this.redis.smembers(this.users));
  }

  async groupDeletions(): Promise<Set<string>> {
    return new Set(await this.redis.smembers(this.groups));
  }

  /** TeamViewer group ids whose held member removals were approved. */
  async memberRemovals(): Promise<Set<string>> {
    return new Set(await this.redis.smembers(this.members));
  }

  async consumed(tvUserIds: readonly string[], tvGroupIds: readonly string[], memberRemovalGroupIds: readonly string[] = []): Promise<void> {
    const tx = this.redis.multi();
    if (tvUserIds.length) tx.srem(this.users, ...tvUserIds);
    if (tvGroupIds.length) tx.srem(this.groups, ...tvGroupIds);
    if (memberRemovalGroupIds.length) tx.srem(this.members, ...memberRemovalGroupIds);
    await tx.exec();
  }
}
