import type { DirectoryGroup } from '../model/directory.js';
import type { TvGroup } from '../model/teamviewer.js';
import type { RemovalBlock } from './guards.js';
import type { RemovalThreshold } from './threshold.js';
import type { WriteCheck } from './drift.js';
import type { GroupSkipReason } from './skip-reasons.js';

/**
 * What the group plan takes and gives: the IdP groups and TeamViewer's, the links between them
 * and the user phase's outcome in; the operations, holds, skips and link changes out.
 */

/** Why a group or membership is left alone: one of GROUP_SKIP_REASONS (plan/skip-reasons.ts). */
export type { GroupSkipReason } from './skip-reasons.js';

export interface GroupPlanPolicy {
  /** Members per add/remove request. */
  batchSize: number;
  onIdpDelete: 'delete' | 'leave';
  threshold: RemovalThreshold;
  /** User deactivations this cycle already ran: group deletions count against the same threshold. */
  deactivationsThisCycle: number;
  /** TeamViewer group ids whose deletion a person approved. */
  approvedDeletions?: ReadonlySet<string>;
  /** Member removals of one cycle above this (count, or share of the memberships this sync manages) are held. */
  memberRemovalThreshold: RemovalThreshold;
  /** TeamViewer group ids whose held member removals a person approved. */
  approvedMemberRemovals?: ReadonlyMap<string, number>;
}

export interface GroupPlanInput {
  /** IdP groups in scope (memberIds are IdP user ids). */
  groups: readonly DirectoryGroup[];
  /**
   * Groups already screened out of `groups` (see screenGroups): reported, and their ids counted as
   * in the read so their TeamViewer groups are not taken for removed.
   */
  screenedOut?: ScreenedOut;
  /**
   * The read guard (guardGroupRemovals): when set, no member is removed and no group missing from
   * the read is deleted or unlinked. Required so that no caller forgets it.
   */
  removalsBlocked: RemovalBlock | undefined;
  teamviewerGroups: readonly TvGroup[];
  /** IdP group id → TeamViewer group id, as this sync learned them. */
  groupLinks: ReadonlyMap<string, string>;
  /** IdP user id → TeamViewer user id, after this cycle's user operations. */
  userLinks: ReadonlyMap<string, string>;
  /** TeamViewer users that exist: links to vanished users are ignored. */
  teamviewerUserIds: ReadonlySet<string>;
  /** Why IdP users have no TeamViewer user, from the user phase, for reports. */
  userProblems: ReadonlyMap<string, string>;
  /** What the IdP says of linked groups that are not in the read. Absent = unknown = out of scope. */
  goneGroups: ReadonlyMap<string, 'deleted' | 'out-of-scope'>;
  /**
   * TeamViewer users whose deactivation the user phase held (threshold), blocked (guard) or
   * refused (protected): their memberships stay too, or the group would do what the guard stopped.
   */
  keepMembers?: ReadonlySet<string>;
  /** IdP user id → e-mail address: names the members an operation adds or removes. */
  userEmails?: ReadonlyMap<string, string>;
  policy: GroupPlanPolicy;
}

/** A member an operation adds or removes: the TeamViewer user, and the IdP user and address where known. */
export interface GroupMember {
  tvUserId: string;
  sourceId?: string;
  email?: string;
}

/*
 * `members` names the users of `memberIds`, in the same order, for the provisioning log; absent in
 * operations planned before it was kept.
 */
export type GroupOperation =
  | { kind: 'createGroup'; key: string; sourceGroupId: string; displayName: string; memberIds: string[]; members?: GroupMember[]; message: string }
  | { kind: 'renameGroup'; key: string; sourceGroupId: string; tvGroupId: string; displayName: string; before: string; message: string }
  | { kind: 'addGroupMembers'; key: string; sourceGroupId: string; tvGroupId: string; memberIds: string[]; members?: GroupMember[]; message: string }
  | { kind: 'removeGroupMembers'; key: string; sourceGroupId: string; tvGroupId: string; memberIds: string[]; members?: GroupMember[]; message: string }
  | { kind: 'deleteGroup'; key: string; sourceGroupId: string; tvGroupId: string; displayName: string; message: string };

export type GroupOperationKind = GroupOperation['kind'];
export type DeleteGroupOperation = Extract<GroupOperation, { kind: 'deleteGroup' }>;

/** What screenGroups took out of a read: reported, and kept from being taken for removed. */
export interface ScreenedOut {
  skipped: GroupSkippedItem[];
  /** Ids of groups skipped whole whose TeamViewer group must not be taken for removed. */
  ids: string[];
  /** How many groups were skipped whole. */
  groups: number;
}

/** A group's member removals held at the member-removal threshold: approved per TeamViewer group. */
export interface HeldMemberRemoval {
  sourceGroupId: string;
  tvGroupId: string;
  displayName: string;
  /** How many members would be removed (the ids are not kept: a held plan repeats every cycle). */
  members: number;
  message: string;
}

export interface GroupSkippedItem {
  sourceGroupId?: string;
  tvGroupId?: string;
  sourceUserId?: string;
  /** The member's address, when the IdP read has it (skips name people by e-mail). */
  email?: string;
  reason: GroupSkipReason;
  message: string;
}

export type GroupLinkChange =
  | { action: 'set'; sourceGroupId: string; tvGroupId: string; reason: 'matched-by-name' }
  | { action: 'drop'; sourceGroupId: string; tvGroupId: string; reason: 'teamviewer-group-gone' | 'out-of-scope' | 'deleted' };

export interface GroupPlanSummary {
  inScope: number;
  teamviewerGroups: number;
  /** Existing TeamViewer groups this sync links to at plan time, plus those taken over by name. */
  managed: number;
  /** Linked or taken-over groups that need no operation. */
  unchanged: number;
  operations: Record<GroupOperationKind, number>;
  /** Members added by creates and adds. */
  membersAdded: number;
  membersRemoved: number;
  /** Group deletions held for approval. */
  held: number;
  /** Members whose removal is held for approval (member-removal threshold). */
  memberRemovalsHeld: number;
  skipped: Partial<Record<GroupSkipReason, number>>;
}

export interface GroupPlan {
  /** createGroup, renameGroup, addGroupMembers, removeGroupMembers, deleteGroup; then by group name and id, then batch. */
  operations: GroupOperation[];
  /** Deletions above the threshold: not run until a person approves them. */
  held: DeleteGroupOperation[];
  /** Member removals above their threshold, per group: not run until a person approves them. */
  heldMemberRemovals: HeldMemberRemoval[];
  skipped: GroupSkippedItem[];
  links: GroupLinkChange[];
  notices: string[];
  /** Why the read guard stopped every member removal and group deletion this cycle. */
  removalsBlocked?: RemovalBlock;
  summary: GroupPlanSummary;
  /** Earlier group writes TeamViewer did not keep, and managed groups changed by hand since. */
  writeCheck?: WriteCheck;
}

/** The group phase of a cycle: a plan, or why there is none (stored with the cycle, reported). */
export type GroupPhase = { status: 'synced'; plan: GroupPlan } | { status: 'unavailable' | 'skipped' | 'failed'; detail: string };
