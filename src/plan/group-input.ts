import type { DirectoryGroup, DirectoryRead } from '../model/directory.js';
import type { TvGroup } from '../model/teamviewer.js';
import type { GroupPlanInput, GroupPlanPolicy, ScreenedOut } from './group-types.js';
import { screenGroups } from './groups.js';
import { guardGroupRemovals, readFacts, type ReadFacts } from './guards.js';
import { FIELD_CAPS, idTooLong } from './mapping.js';
import type { Plan } from './types.js';

/**
 * What the group plan is given, from what the cycle has: the IdP read (kept with the plan), the
 * user phase's outcome, and what the runtime read of TeamViewer and the links. Pure.
 */

/**
 * What the group phase keeps of the IdP read, stored with the plan so a resumed cycle has it.
 * Bounded: groups with over-long values are screened out and only counts of the read are kept.
 */
export interface GroupPhaseRead {
  groups: DirectoryGroup[];
  /** Whether the read covered the whole scope, groups included (kept for cycles stored before `read`). */
  complete: boolean;
  /** What the read guard needs of the read. */
  read?: ReadFacts;
  screenedOut?: ScreenedOut;
  /**
   * [IdP user id, e-mail] of the users in the read, so the group phase can name whom it adds and
   * removes (absent in cycles stored before, and when groups are not synced).
   */
  emails?: [string, string][];
}

/** The user phase as the group phase sees it: its plan, and the outcomes of its operations. */
export interface UserPhaseOutcome {
  plan: Plan;
  /** Outcomes of the user operations (failed ones explain missing members). */
  results: readonly { sourceId: string; kind: string; status: string; failureClass?: string }[];
}

/** What the runtime read for the group phase: TeamViewer's groups, the links, the IdP's word on groups that left the read. */
export interface GroupPhaseFacts {
  teamviewerGroups: readonly TvGroup[];
  groupLinks: ReadonlyMap<string, string>;
  /** IdP user id → TeamViewer user id, after the user phase. */
  userLinks: ReadonlyMap<string, string>;
  goneGroups: ReadonlyMap<string, 'deleted' | 'out-of-scope'>;
}

/**
 * The group phase's part of an IdP read: the groups it can sync and the facts the read guard
 * decides on (an unreadable group, assignment or membership, a read without groups, … let no
 * member be removed and no group be deleted).
 */
export function groupPhaseInput(directory: DirectoryRead, opts: { emails?: boolean } = {}): GroupPhaseRead {
  const read = readFacts(directory);
  const { groups, screenedOut } = screenGroups(directory.groups);
  const complete = read.complete && read.doubtful.groups === 0 && read.groupsComplete !== false;
  const input: GroupPhaseRead = { groups, complete, read, screenedOut };
  if (opts.emails) input.emails = userEmails(directory);
  return input;
}

/** The addresses of the read's users, bounded like everything kept of a read (over-long values are left out). */
function userEmails(directory: DirectoryRead): [string, string][] {
  const emails: [string, string][] = [];
  for (const user of directory.users) {
    const email = user.email?.trim();
    if (email && email.length <= FIELD_CAPS.email && !idTooLong(user.id)) emails.push([user.id, email]);
  }
  return emails;
}

/** The group plan's input: the guard, the members to keep and the users' problems follow from the user phase. */
export function groupPlanInput(
  directory: GroupPhaseRead,
  userPhase: UserPhaseOutcome,
  facts: GroupPhaseFacts,
  policy: Omit<GroupPlanPolicy, 'deactivationsThisCycle'>,
): GroupPlanInput {
  // The same guard as the users': whatever stopped deactivations stops group removals too.
  const usersBlocked = userPhase.plan.deactivationsBlocked;
  const removalsBlocked = guardGroupRemovals(storedReadFacts(directory), {
    ...(usersBlocked ? { usersBlocked } : {}),
    groupLinks: facts.groupLinks.size,
    teamviewerGroups: facts.teamviewerGroups.length,
  });
  return {
    keepMembers: keepMembers(userPhase.plan),
    groups: directory.groups,
    ...(directory.screenedOut ? { screenedOut: directory.screenedOut } : {}),
    removalsBlocked,
    teamviewerGroups: facts.teamviewerGroups,
    groupLinks: facts.groupLinks,
    userLinks: facts.userLinks,
    teamviewerUserIds: new Set(facts.userLinks.values()),
    userProblems: userProblems(userPhase),
    goneGroups: facts.goneGroups,
    userEmails: memberEmails(directory, userPhase.plan),
    policy: { ...policy, deactivationsThisCycle: userPhase.results.filter((r) => r.kind === 'deactivateUser' && r.status === 'applied').length },
  };
}

/** Addresses of IdP users: from the read, and for users who left it, from the user plan's operations on them. */
function memberEmails(directory: GroupPhaseRead, plan: Plan): Map<string, string> {
  const emails = new Map(directory.emails ?? []);
  for (const op of [...plan.operations, ...plan.held]) if (!emails.has(op.sourceId)) emails.set(op.sourceId, op.email);
  return emails;
}

/** The read facts of a stored cycle; one stored before they were kept has only `complete`. */
function storedReadFacts(directory: GroupPhaseRead): ReadFacts {
  // Such a cycle's user plan carries its own block, so "some users" stands in for the unknown count.
  return directory.read ?? { complete: directory.complete, users: 1, groups: directory.groups.length, doubtful: { users: 0, groups: 0 } };
}

/**
 * TeamViewer users whose deactivation the user phase held, blocked or refused, and everyone on the
 * protect list or owning the token: their memberships stay too.
 */
function keepMembers(plan: Plan): Set<string> {
  const keep = new Set<string>([...plan.held.map((op) => op.tvUserId), ...(plan.protectedTvUserIds ?? [])]);
  for (const item of plan.skipped) if (item.tvUserId && (item.reason === 'protected' || item.reason === 'source-read-incomplete')) keep.add(item.tvUserId);
  return keep;
}

/** Why IdP users have no TeamViewer user after the user phase, for the group report. */
function userProblems(outcome: UserPhaseOutcome): Map<string, string> {
  const problems = new Map<string, string>();
  for (const item of outcome.plan.skipped) if (item.sourceId) problems.set(item.sourceId, item.reason);
  for (const result of outcome.results)
    if (result.status === 'failed' && result.kind === 'createUser') problems.set(result.sourceId, result.failureClass ?? 'failed');
  return problems;
}
