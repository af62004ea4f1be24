import type { Redis } from 'ioredis';
import { syncKeys, type KeyPrefix } from './keys.js';

/** Approvals live a week: an approval for a plan long gone should not release anything. */
const APPROVAL_TTL_S = 7 * 86_400;

/**
 * Deactivations, group deletions and member removals a person released from their thresholds,
 * and recycled addresses a person released (`tvsync approve`). Member removals are approved per TeamViewer group. The next cycle lets them
 * through; each is forgotten once the plan that read it has run.
 */
export class ApprovalStore {
  private readonly users: string;
  private readonly groups: string;
  private readonly members: string;
  private readonly recycledKey: string;

  constructor(
    private readonly redis: Redis,
    prefix: KeyPrefix,
    sync: string,
  ) {
    const keys = syncKeys(prefix, sync);
    this.users = keys.approvedDeactivations;
    this.groups = keys.approvedGroupDeletions;
    this.members = keys.approvedMemberRemovals;
    this.recycledKey = keys.approvedRecycled;
  }

  /** Recycled addresses a person released, by TeamViewer user id: reactivated and linked to the new IdP user. */
  async approveRecycled(tvUserIds: readonly string[]): Promise<void> {
    if (tvUserIds.length === 0) return;
    await this.redis
      .multi()
      .sadd(this.recycledKey, ...tvUserIds)
      .expire(this.recycledKey, APPROVAL_TTL_S)
      .exec();
  }

  async recycled(): Promise<Set<string>> {
    return new Set(await this.redis.smembers(this.recycledKey));
  }

  async consumedRecycled(tvUserIds: readonly string[]): Promise<void> {
    if (tvUserIds.length) await this.redis.srem(this.recycledKey, ...tvUserIds);
  }

  /**
   * Member removals are approved per group and up to the number a person saw held
   * (`<tvGroupId>:<count>`), so an approval of 30 removals never lets 3,000 through.
   */
  async approve(
    tvUserIds: readonly string[],
    tvGroupIds: readonly string[],
    memberRemovals: readonly { tvGroupId: string; members: number }[] = [],
  ): Promise<void> {
    const tx = this.redis.multi();
    if (tvUserIds.length) tx.sadd(this.users, ...tvUserIds).expire(this.users, APPROVAL_TTL_S);
    if (tvGroupIds.length) tx.sadd(this.groups, ...tvGroupIds).expire(this.groups, APPROVAL_TTL_S);
    if (memberRemovals.length) tx.sadd(this.members, ...memberRemovals.map((r) => `${r.tvGroupId}:${r.members}`)).expire(this.members, APPROVAL_TTL_S);
    await tx.exec();
  }

  async deactivations(): Promise<Set<string>> {
    return new Set(await this.redis.smembers(this.users));
  }

  async groupDeletions(): Promise<Set<string>> {
    return new Set(await this.redis.smembers(this.groups));
  }

  /** TeamViewer group id → how many of its members' removals were approved (the largest approval). */
  async memberRemovals(): Promise<Map<string, number>> {
    const approved = new Map<string, number>();
    for (const entry of await this.redis.smembers(this.members)) {
      const cut = entry.lastIndexOf(':');
      const count = Number(entry.slice(cut + 1));
      if (cut <= 0 || !Number.isSafeInteger(count)) continue;
      const group = entry.slice(0, cut);
      approved.set(group, Math.max(count, approved.get(group) ?? 0));
    }
    return approved;
  }

  async consumed(tvUserIds: readonly string[], tvGroupIds: readonly string[], memberRemovalGroupIds: readonly string[] = []): Promise<void> {
    const groups = new Set(memberRemovalGroupIds);
    const members = groups.size ? (await this.redis.smembers(this.members)).filter((entry) => groups.has(entry.slice(0, entry.lastIndexOf(':')))) : [];
    const tx = this.redis.multi();
    if (tvUserIds.length) tx.srem(this.users, ...tvUserIds);
    if (tvGroupIds.length) tx.srem(this.groups, ...tvGroupIds);
    if (members.length) tx.srem(this.members, ...members);
    await tx.exec();
  }
}
