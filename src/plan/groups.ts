import type { DirectoryGroup } from '../model/directory.js';
import type { RemovalBlock } from './guards.js';
import type {
  DeleteGroupOperation,
  GroupLinkChange,
  GroupMember,
  GroupOperation,
  GroupOperationKind,
  GroupPlan,
  GroupPlanInput,
  GroupSkippedItem,
  GroupSkipReason,
  HeldMemberRemoval,
  ScreenedOut,
} from './group-types.js';
import { clip, FIELD_CAPS, groupValueProblem, idTooLong } from './mapping.js';
import { exceedsThreshold, shareOf } from './threshold.js';

/**
 * The group plan: which TeamViewer user groups to create, rename, fill, empty or delete so that
 * they mirror the IdP groups in scope. Pure and deterministic, like the user plan: it runs after
 * the user phase and sees its outcome only through the links and problems it is given.
 *
 * computeGroupPlan runs in steps over one working record (GroupPlanning): index both sides, plan
 * each IdP group in the read, then the linked groups missing from it, then hold what exceeds the
 * thresholds, and finally sort and count.
 */

const KIND_ORDER: Record<GroupOperationKind, number> = { createGroup: 0, renameGroup: 1, addGroupMembers: 2, removeGroupMembers: 3, deleteGroup: 4 };
const DEFAULT_BATCH_SIZE = 100;

interface PlannedOperation {
  op: GroupOperation;
  nameKey: string;
  name: string;
  batch: number;
}

/** An IdP or TeamViewer group as the plan compares them (a TeamViewer group's name is its displayName). */
interface GroupRecord {
  id: string;
  name: string;
  memberIds: readonly string[];
}

interface Resolved {
  /** Sorted TeamViewer user ids. */
  desired: string[];
  wanted: ReadonlySet<string>;
  missing: { userId: string; tvUserId: string | undefined }[];
}

interface DeletionCandidate {
  op: DeleteGroupOperation;
  /** Further links from groups not in the read to the same TeamViewer group: dropped with the delete. */
  alsoLinkedFrom: string[];
}

type NameMatch = { kind: 'none' } | { kind: 'match'; tv: GroupRecord } | { kind: 'skip'; reason: GroupSkipReason; message: string; tvGroupId?: string };

/** Both sides indexed, and what the steps of one plan have decided so far. */
interface GroupPlanning {
  input: GroupPlanInput;
  /** The read guard: set, nothing is taken away. */
  blocked: RemovalBlock | undefined;
  batchSize: number;
  /** IdP groups in the read that can be synced, one per id, sorted by id. */
  groups: GroupRecord[];
  screenedOut: ScreenedOut[];
  tvById: Map<string, GroupRecord>;
  tvByName: Map<string, GroupRecord[]>;
  tvByKey: Map<string, GroupRecord[]>;
  /** IdP groups in the read by name key: more than one cannot be matched by name. */
  namesakes: Map<string, GroupRecord[]>;
  /** TeamViewer group id → the IdP group in the read that keeps it through its link. */
  holderOf: Map<string, string>;
  /** Links of groups that are not in the read, smallest IdP id first. */
  missingLinks: [string, string][];
  /** TeamViewer group id → the first IdP group not in the read that links to it. */
  linkedFromMissing: Map<string, string>;
  /** TeamViewer group id → IdP group that takes it over by name in this plan. */
  takenOver: Map<string, string>;
  /** TeamViewer user id → the IdP user linked to it (the smallest id, should there be several); built on first use. */
  linkedUser?: Map<string, string>;
  planned: PlannedOperation[];
  skipped: GroupSkippedItem[];
  links: GroupLinkChange[];
  notices: string[];
  /** Member removals waiting for the member-removal threshold, which needs them all. */
  removals: { group: GroupRecord; tvGroupId: string; memberIds: string[] }[];
  unchanged: number;
  withheldRemovals: number;
  withheldRemovalGroups: number;
  keptMissingGroups: number;
}

/** Computes what must change in TeamViewer's user groups. Same input, same plan, in the same order. */
export function computeGroupPlan(input: GroupPlanInput): GroupPlan {
  const planning = indexSides(input);
  for (const group of planning.groups) planGroup(planning, group);
  const candidates = planMissingGroups(planning);
  const managedIds = managedGroupIds(planning);
  const heldMemberRemovals = gateMemberRemovals(planning, managedIds);
  const held = gateDeletions(planning, candidates, managedIds.size);
  const { blocked } = planning;
  if (blocked) {
    planning.notices.push(
      `${blocked.message.replace(/\.$/, '')} (${members(planning.withheldRemovals)} kept in ${planning.withheldRemovalGroups} group(s), ${planning.keptMissingGroups} missing group(s) kept).`,
    );
  }
  return finish(planning, held, heldMemberRemovals, managedIds.size);
}

/** Screens and de-duplicates both sides, and indexes them and the links. */
function indexSides(input: GroupPlanInput): GroupPlanning {
  const { policy, groupLinks } = input;
  const skipped: GroupSkippedItem[] = [];
  const screened = screenGroups(input.groups);
  const screenedOut = [screened.screenedOut, ...(input.screenedOut ? [input.screenedOut] : [])];
  for (const out of screenedOut) skipped.push(...out.skipped);
  const groups = uniqueGroups(screened.groups);
  const tvGroups = uniqueGroups(input.teamviewerGroups.map((g) => ({ id: g.id, name: g.displayName, memberIds: g.memberIds })));
  const tvById = new Map<string, GroupRecord>();
  const tvByName = new Map<string, GroupRecord[]>();
  const tvByKey = new Map<string, GroupRecord[]>();
  for (const tv of tvGroups) {
    tvById.set(tv.id, tv);
    pushTo(tvByName, tv.name, tv);
    pushTo(tvByKey, nameKey(tv.name), tv);
  }

  const inRead = new Set<string>();
  const namesakes = new Map<string, GroupRecord[]>();
  for (const group of groups) {
    inRead.add(group.id);
    pushTo(namesakes, nameKey(group.name), group);
  }
  // A group skipped for an over-long name is still in scope: its TeamViewer group is not removed.
  for (const out of screenedOut) for (const id of out.ids) inRead.add(id);

  // Existing TeamViewer groups held through a link by a group in the read. Should two IdP groups
  // ever link to one TeamViewer group, the smallest id keeps it: two owners would undo each other.
  const holderOf = new Map<string, string>();
  for (const group of groups) {
    const tvId = groupLinks.get(group.id);
    if (tvId !== undefined && tvById.has(tvId) && !holderOf.has(tvId)) holderOf.set(tvId, group.id);
  }
  const missingLinks: [string, string][] = [];
  for (const entry of groupLinks) if (!inRead.has(entry[0])) missingLinks.push(entry);
  missingLinks.sort((a, b) => compare(a[0], b[0]));
  const linkedFromMissing = new Map<string, string>();
  for (const [sourceId, tvId] of missingLinks) if (!linkedFromMissing.has(tvId)) linkedFromMissing.set(tvId, sourceId);

  return {
    input,
    blocked: input.removalsBlocked,
    // Config validates the size; a bad value must still not make the batching loop run away.
    batchSize: Number.isInteger(policy.batchSize) && policy.batchSize > 0 ? policy.batchSize : DEFAULT_BATCH_SIZE,
    groups,
    screenedOut,
    tvById,
    tvByName,
    tvByKey,
    namesakes,
    holderOf,
    missingLinks,
    linkedFromMissing,
    takenOver: new Map(),
    planned: [],
    skipped,
    links: [],
    notices: [],
    removals: [],
    unchanged: 0,
    withheldRemovals: 0,
    withheldRemovalGroups: 0,
    keptMissingGroups: 0,
  };
}

/** One IdP group in the read: find its TeamViewer group (link, else name), then create, rename, add and queue removals. */
function planGroup(planning: GroupPlanning, group: GroupRecord): void {
  const { input, blocked, tvById, holderOf, skipped, links, planned } = planning;
  const resolved = resolve(input, group);
  let tv: GroupRecord | undefined;
  const linkedId = input.groupLinks.get(group.id);
  if (linkedId !== undefined) {
    const linked = tvById.get(linkedId);
    if (!linked) {
      if (blocked?.reason === 'teamviewer-groups-empty') {
        // Not believed: re-creating would duplicate the group should TeamViewer list it again.
        skipped.push({
          sourceGroupId: group.id,
          tvGroupId: linkedId,
          reason: 'source-read-incomplete',
          message: `group ${group.name} is linked to TeamViewer group ${linkedId}, which TeamViewer did not list; neither created again nor unlinked because ${blocked.cause}`,
        });
        return;
      }
      links.push({ action: 'drop', sourceGroupId: group.id, tvGroupId: linkedId, reason: 'teamviewer-group-gone' });
    } else if (holderOf.get(linkedId) !== group.id) {
      skipped.push({
        sourceGroupId: group.id,
        tvGroupId: linkedId,
        reason: 'teamviewer-group-shared',
        message: `IdP group ${group.name} is linked to TeamViewer group ${clip(linked.name)} (${linkedId}), which IdP group ${holderOf.get(linkedId) ?? '?'} also links to and keeps; ${group.name} is not synced until the link is corrected`,
      });
      return;
    } else {
      tv = linked;
    }
  }

  if (!tv) {
    const match = matchByName(planning, group);
    if (match.kind === 'skip') {
      // No member reports for a group left alone: they would only repeat why the group is skipped.
      const item: GroupSkippedItem = { sourceGroupId: group.id, reason: match.reason, message: match.message };
      if (match.tvGroupId !== undefined) item.tvGroupId = match.tvGroupId;
      skipped.push(item);
      return;
    }
    if (match.kind === 'none') {
      reportMissing(planning, group, resolved, undefined);
      if (resolved.desired.length === 0) {
        const why = resolved.missing.length > 0 ? `none of its ${members(resolved.missing.length)} has a TeamViewer user` : 'it has no members';
        skipped.push({ sourceGroupId: group.id, reason: 'empty-group-not-created', message: `group ${group.name} is not created in TeamViewer: ${why}` });
        return;
      }
      planned.push({
        op: {
          kind: 'createGroup',
          key: `createGroup.${group.id}`,
          sourceGroupId: group.id,
          displayName: group.name,
          memberIds: resolved.desired,
          members: resolved.desired.map((id) => memberOf(planning, id)),
          message: `create group ${group.name} with ${members(resolved.desired.length)}`,
        },
        nameKey: nameKey(group.name),
        name: group.name,
        batch: 0,
      });
      return;
    }
    tv = match.tv;
    planning.takenOver.set(tv.id, group.id);
    links.push({ action: 'set', sourceGroupId: group.id, tvGroupId: tv.id, reason: 'matched-by-name' });
  }

  reportMissing(planning, group, resolved, tv.id);
  const before = planned.length;
  if (group.name !== tv.name) {
    const why = planning.takenOver.get(tv.id) === group.id ? ' (taken over by name)' : '';
    planned.push({
      op: {
        kind: 'renameGroup',
        key: `renameGroup.${group.id}`,
        sourceGroupId: group.id,
        tvGroupId: tv.id,
        displayName: group.name,
        before: clip(tv.name, FIELD_CAPS.name),
        message: `rename group ${clip(tv.name)} to ${group.name}${why}`,
      },
      nameKey: nameKey(group.name),
      name: group.name,
      batch: 0,
    });
  }
  const current = new Set(tv.memberIds);
  const toAdd = resolved.desired.filter((id) => !current.has(id));
  let toRemove: string[] = [];
  for (const id of current) if (!resolved.wanted.has(id) && !input.keepMembers?.has(id)) toRemove.push(id);
  toRemove.sort();
  if (toRemove.length > 0 && blocked) {
    planning.withheldRemovals += toRemove.length;
    planning.withheldRemovalGroups++;
    skipped.push({
      sourceGroupId: group.id,
      tvGroupId: tv.id,
      reason: 'source-read-incomplete',
      message: `${members(toRemove.length)} of group ${group.name} would be removed; not done because ${blocked.cause}`,
    });
    toRemove = [];
  }
  addBatches(planning, 'addGroupMembers', group, tv.id, toAdd);
  // Removals wait for the member-removal threshold, which needs them all.
  if (toRemove.length > 0) planning.removals.push({ group, tvGroupId: tv.id, memberIds: toRemove });
  else if (planned.length === before) planning.unchanged++;
}

/** The group's members as TeamViewer users: those linked to one that exists, and the others. */
function resolve(input: GroupPlanInput, group: GroupRecord): Resolved {
  const wanted = new Set<string>();
  // Most members are provisioned: the set that de-duplicates the others is made only when needed.
  let missingSeen: Set<string> | undefined;
  const missing: Resolved['missing'] = [];
  for (const userId of group.memberIds) {
    const tvUserId = input.userLinks.get(userId);
    if (tvUserId !== undefined && input.teamviewerUserIds.has(tvUserId)) {
      wanted.add(tvUserId);
    } else {
      missingSeen ??= new Set<string>();
      if (missingSeen.has(userId)) continue;
      missingSeen.add(userId);
      missing.push({ userId, tvUserId });
    }
  }
  missing.sort((a, b) => compare(a.userId, b.userId));
  // The default sort orders by UTF-16 code units, as compare() does, without a call per comparison.
  return { desired: [...wanted].sort(), wanted, missing };
}

function reportMissing(planning: GroupPlanning, group: GroupRecord, resolved: Resolved, tvGroupId: string | undefined): void {
  for (const { userId, tvUserId } of resolved.missing) {
    const problem = planning.input.userProblems.get(userId);
    const why =
      problem !== undefined
        ? `has no TeamViewer user (${problem})`
        : tvUserId !== undefined
          ? `is linked to TeamViewer user ${tvUserId}, which no longer exists`
          : 'has no TeamViewer user yet';
    const email = planning.input.userEmails?.get(userId);
    const item: GroupSkippedItem = {
      sourceGroupId: group.id,
      sourceUserId: clip(userId),
      reason: 'member-not-provisioned',
      message: `${email ?? `IdP user ${clip(userId)}`} ${why}; left out of group ${group.name}`,
    };
    if (email !== undefined) item.email = email;
    if (tvGroupId !== undefined) item.tvGroupId = tvGroupId;
    planning.skipped.push(item);
  }
}

function addBatches(planning: GroupPlanning, kind: 'addGroupMembers' | 'removeGroupMembers', group: GroupRecord, tvGroupId: string, memberIds: string[]): void {
  const { batchSize } = planning;
  const count = Math.ceil(memberIds.length / batchSize);
  for (let batch = 0; batch < count; batch++) {
    const slice = memberIds.slice(batch * batchSize, (batch + 1) * batchSize);
    const verb = kind === 'addGroupMembers' ? `add ${members(slice.length)} to` : `remove ${members(slice.length)} from`;
    const of = count > 1 ? ` (batch ${batch + 1} of ${count})` : '';
    planning.planned.push({
      op: {
        kind,
        key: `${kind}.${group.id}.${batch}`,
        sourceGroupId: group.id,
        tvGroupId,
        memberIds: slice,
        members: slice.map((id) => memberOf(planning, id)),
        message: `${verb} ${group.name}${of}`,
      },
      nameKey: nameKey(group.name),
      name: group.name,
      batch,
    });
  }
}

/** Who a TeamViewer user an operation adds or removes is: the IdP user linked to it and its address, where known. */
function memberOf(planning: GroupPlanning, tvUserId: string): GroupMember {
  if (!planning.linkedUser) {
    planning.linkedUser = new Map();
    for (const [sourceId, tvId] of planning.input.userLinks) {
      const held = planning.linkedUser.get(tvId);
      if (held === undefined || compare(sourceId, held) < 0) planning.linkedUser.set(tvId, sourceId);
    }
  }
  const member: GroupMember = { tvUserId };
  const sourceId = planning.linkedUser.get(tvUserId);
  if (sourceId === undefined) return member;
  member.sourceId = sourceId;
  const email = planning.input.userEmails?.get(sourceId);
  if (email !== undefined) member.email = email;
  return member;
}

/** The TeamViewer group an unlinked IdP group takes over by name, if exactly one may be. */
function matchByName(planning: GroupPlanning, group: GroupRecord): NameMatch {
  const { blocked } = planning;
  const sameName = planning.namesakes.get(nameKey(group.name)) ?? [];
  if (sameName.length > 1) {
    const others = sameName
      .filter((g) => g !== group)
      .map((g) => `${g.name} (${g.id})`)
      .join(', ');
    // Which of them a TeamViewer group of that name belongs to cannot be told, and creating one
    // for each would leave TeamViewer with groups nobody can tell apart; the IdP must rename one.
    return {
      kind: 'skip',
      reason: 'duplicate-group-name',
      message: `IdP group ${group.name} shares its name with ${others} (ignoring case); it is neither matched to a TeamViewer group by name nor created until one is renamed in the IdP`,
    };
  }
  const exact = planning.tvByName.get(group.name) ?? [];
  const loose = planning.tvByKey.get(nameKey(group.name)) ?? [];
  const candidates = exact.length > 0 ? exact : loose;
  if (candidates.length === 0) return { kind: 'none' };
  if (candidates.length > 1) {
    const ids =
      candidates
        .slice(0, 10)
        .map((tv) => `${clip(tv.name)} (${tv.id})`)
        .join(', ') + (candidates.length > 10 ? ` and ${candidates.length - 10} more` : '');
    return {
      kind: 'skip',
      reason: 'ambiguous-group-name',
      message: `IdP group ${group.name} matches more than one TeamViewer group by name: ${ids}; none is taken over and no group is created`,
    };
  }
  const tv = candidates[0];
  if (!tv) return { kind: 'none' };
  const holder = planning.holderOf.get(tv.id);
  if (holder !== undefined) {
    return {
      kind: 'skip',
      reason: 'group-name-taken',
      tvGroupId: tv.id,
      message: `TeamViewer group ${clip(tv.name)} (${tv.id}) is synced with IdP group ${holder}; IdP group ${group.name} does not take it over (tried again next cycle, e.g. after a pending rename)`,
    };
  }
  const missingHolder = planning.linkedFromMissing.get(tv.id);
  // A group missing from a doubtful read may still be in scope: its TeamViewer group stays its own.
  if (missingHolder !== undefined && blocked) {
    return {
      kind: 'skip',
      reason: 'group-name-taken',
      tvGroupId: tv.id,
      message: `TeamViewer group ${clip(tv.name)} (${tv.id}) is linked to IdP group ${missingHolder}, which the IdP read did not return; IdP group ${group.name} does not take it over this cycle because ${blocked.cause}`,
    };
  }
  return { kind: 'match', tv };
}

/** Linked groups missing from the read: deleted in the IdP, or out of scope. Returns the deletions to gate. */
function planMissingGroups(planning: GroupPlanning): DeletionCandidate[] {
  const { input, blocked, links, skipped } = planning;
  const candidates: DeletionCandidate[] = [];
  const candidateByTv = new Map<string, DeletionCandidate>();
  for (const [sourceId, tvId] of planning.missingLinks) {
    const tv = planning.tvById.get(tvId);
    if (!tv) {
      if (blocked?.reason === 'teamviewer-groups-empty') continue;
      links.push({ action: 'drop', sourceGroupId: sourceId, tvGroupId: tvId, reason: 'teamviewer-group-gone' });
      continue;
    }
    const status = input.goneGroups.get(sourceId) ?? 'out-of-scope';
    if (blocked) {
      // Not even a deletion the IdP reports is acted on: after a doubtful read it may not be one.
      planning.keptMissingGroups++;
      const what = status === 'deleted' ? 'is reported deleted by the IdP' : 'is missing from the IdP read';
      skipped.push({
        sourceGroupId: sourceId,
        tvGroupId: tvId,
        reason: 'source-read-incomplete',
        message: `group ${clip(tv.name)} ${what}; kept in TeamViewer and linked because ${blocked.cause}`,
      });
      continue;
    }
    // A TeamViewer group an IdP group in the read syncs is never deleted or reported as left behind.
    const usedBy = planning.holderOf.get(tvId) ?? planning.takenOver.get(tvId);
    if (status === 'deleted') {
      if (input.policy.onIdpDelete === 'delete' && usedBy === undefined) {
        const existing = candidateByTv.get(tvId);
        if (existing) {
          existing.alsoLinkedFrom.push(sourceId);
          continue;
        }
        const candidate: DeletionCandidate = {
          op: {
            kind: 'deleteGroup',
            key: `deleteGroup.${sourceId}`,
            sourceGroupId: sourceId,
            tvGroupId: tvId,
            displayName: clip(tv.name, FIELD_CAPS.name),
            message: `group ${clip(tv.name)} was deleted in the IdP; deleting it in TeamViewer`,
          },
          alsoLinkedFrom: [],
        };
        candidates.push(candidate);
        candidateByTv.set(tvId, candidate);
        continue;
      }
      links.push({ action: 'drop', sourceGroupId: sourceId, tvGroupId: tvId, reason: 'deleted' });
      const message =
        usedBy !== undefined
          ? `group ${clip(tv.name)} was deleted in the IdP; its TeamViewer group is now synced with IdP group ${usedBy}, so it is kept`
          : `group ${clip(tv.name)} was deleted in the IdP; left in TeamViewer as it is (groups deleted in the IdP are left) and no longer synced`;
      skipped.push({ sourceGroupId: sourceId, tvGroupId: tvId, reason: 'group-deleted-in-idp-left', message });
      continue;
    }
    links.push({ action: 'drop', sourceGroupId: sourceId, tvGroupId: tvId, reason: 'out-of-scope' });
    if (usedBy === undefined) {
      skipped.push({
        sourceGroupId: sourceId,
        tvGroupId: tvId,
        reason: 'group-left-out-of-scope',
        message: `group ${clip(tv.name)} is no longer in the IdP scope; left in TeamViewer as it is and no longer synced`,
      });
    }
  }
  return candidates;
}

/** What a deletion can take away: existing TeamViewer groups linked at plan time, plus takeovers. */
function managedGroupIds(planning: GroupPlanning): Set<string> {
  const managedIds = new Set<string>();
  for (const tvId of planning.input.groupLinks.values()) if (planning.tvById.has(tvId)) managedIds.add(tvId);
  for (const tvId of planning.takenOver.keys()) managedIds.add(tvId);
  return managedIds;
}

/** Member removals: held past their own threshold, against the memberships this sync manages. */
function gateMemberRemovals(planning: GroupPlanning, managedIds: ReadonlySet<string>): HeldMemberRemoval[] {
  const { policy } = planning.input;
  const heldMemberRemovals: HeldMemberRemoval[] = [];
  let managedMemberships = 0;
  for (const tvId of managedIds) managedMemberships += new Set(planning.tvById.get(tvId)?.memberIds).size;
  const approvedCounts = policy.approvedMemberRemovals ?? new Map<string, number>();
  // An approval covers a group's removals up to the number a person saw held, not whatever comes later.
  const approved = (removal: { tvGroupId: string; memberIds: readonly string[] }) => removal.memberIds.length <= (approvedCounts.get(removal.tvGroupId) ?? -1);
  let unapprovedRemovals = 0;
  for (const removal of planning.removals) if (!approved(removal)) unapprovedRemovals += removal.memberIds.length;
  const removalThreshold = policy.memberRemovalThreshold;
  const holdRemovals = exceedsThreshold(removalThreshold, unapprovedRemovals, managedMemberships);
  for (const removal of planning.removals) {
    const { group, tvGroupId, memberIds } = removal;
    if (holdRemovals && !approved(removal)) {
      heldMemberRemovals.push({
        sourceGroupId: group.id,
        tvGroupId,
        displayName: group.name,
        members: memberIds.length,
        message: `remove ${members(memberIds.length)} from ${group.name}: held at the member-removal threshold`,
      });
    } else {
      addBatches(planning, 'removeGroupMembers', group, tvGroupId, memberIds);
    }
  }
  if (holdRemovals) {
    const share = shareOf(unapprovedRemovals, managedMemberships, 'memberships');
    planning.notices.push(
      `${unapprovedRemovals} unapproved member removal(s)${share} in ${heldMemberRemovals.length} group(s) exceed the member-removal threshold (more than ${removalThreshold.maxCount}, or more than ${removalThreshold.maxPercent}%); they are held for approval while adds and the other group changes run.`,
    );
  }
  return heldMemberRemovals;
}

/** Group deletions: held past the threshold they share with the cycle's user deactivations. */
function gateDeletions(planning: GroupPlanning, candidates: DeletionCandidate[], managed: number): DeleteGroupOperation[] {
  const { policy } = planning.input;
  const held: DeleteGroupOperation[] = [];
  const approved = policy.approvedDeletions ?? new Set<string>();
  const unapproved = candidates.filter((c) => !approved.has(c.op.tvGroupId)).length;
  const { maxCount, maxPercent } = policy.threshold;
  const holdUnapproved = exceedsThreshold(policy.threshold, unapproved, managed, policy.deactivationsThisCycle);
  for (const candidate of candidates) {
    if (holdUnapproved && !approved.has(candidate.op.tvGroupId)) {
      held.push(candidate.op);
      continue;
    }
    planning.planned.push({ op: candidate.op, nameKey: nameKey(candidate.op.displayName), name: candidate.op.displayName, batch: 0 });
    // The runtime drops these links once the delete has succeeded.
    for (const sourceId of [candidate.op.sourceGroupId, ...candidate.alsoLinkedFrom]) {
      planning.links.push({ action: 'drop', sourceGroupId: sourceId, tvGroupId: candidate.op.tvGroupId, reason: 'deleted' });
    }
  }
  if (holdUnapproved) {
    const users = policy.deactivationsThisCycle > 0 ? ` on top of ${policy.deactivationsThisCycle} user deactivations this cycle` : '';
    planning.notices.push(
      `${unapproved} unapproved group deletion(s)${shareOf(unapproved, managed, 'groups')}${users} exceed the threshold (more than ${maxCount} removals in a cycle, or more than ${maxPercent}% of managed groups); they are held for approval while the other group changes run.`,
    );
  }
  return held;
}

/** Sorts every list into the plan's order and counts the summary. */
function finish(planning: GroupPlanning, held: DeleteGroupOperation[], heldMemberRemovals: HeldMemberRemoval[], managed: number): GroupPlan {
  const { planned, skipped, links } = planning;
  planned.sort(
    (a, b) =>
      KIND_ORDER[a.op.kind] - KIND_ORDER[b.op.kind] ||
      compare(a.nameKey, b.nameKey) ||
      compare(a.name, b.name) ||
      compare(a.op.sourceGroupId, b.op.sourceGroupId) ||
      a.batch - b.batch,
  );
  const operations = planned.map((p) => p.op);
  heldMemberRemovals.sort((a, b) => compare(nameKey(a.displayName), nameKey(b.displayName)) || compare(a.sourceGroupId, b.sourceGroupId));
  held.sort(
    (a, b) => compare(nameKey(a.displayName), nameKey(b.displayName)) || compare(a.displayName, b.displayName) || compare(a.sourceGroupId, b.sourceGroupId),
  );
  skipped.sort(
    (a, b) =>
      compare(a.reason, b.reason) ||
      compare(a.sourceGroupId ?? '', b.sourceGroupId ?? '') ||
      compare(a.tvGroupId ?? '', b.tvGroupId ?? '') ||
      compare(a.sourceUserId ?? '', b.sourceUserId ?? ''),
  );
  // drop sorts before set: a takeover of a group linked elsewhere first releases the old link.
  links.sort((a, b) => compare(a.sourceGroupId, b.sourceGroupId) || compare(a.action, b.action) || compare(a.tvGroupId, b.tvGroupId));

  const operationCounts: Record<GroupOperationKind, number> = { createGroup: 0, renameGroup: 0, addGroupMembers: 0, removeGroupMembers: 0, deleteGroup: 0 };
  let membersAdded = 0;
  let membersRemoved = 0;
  for (const op of operations) {
    operationCounts[op.kind]++;
    if (op.kind === 'createGroup' || op.kind === 'addGroupMembers') membersAdded += op.memberIds.length;
    else if (op.kind === 'removeGroupMembers') membersRemoved += op.memberIds.length;
  }
  const skippedCounts: Partial<Record<GroupSkipReason, number>> = {};
  for (const item of skipped) skippedCounts[item.reason] = (skippedCounts[item.reason] ?? 0) + 1;

  const plan: GroupPlan = {
    operations,
    held,
    heldMemberRemovals,
    skipped,
    links,
    notices: planning.notices,
    summary: {
      inScope: planning.groups.length + planning.screenedOut.reduce((n, out) => n + out.groups, 0),
      teamviewerGroups: planning.tvById.size,
      managed,
      unchanged: planning.unchanged,
      operations: operationCounts,
      membersAdded,
      membersRemoved,
      held: held.length,
      memberRemovalsHeld: heldMemberRemovals.reduce((n, h) => n + h.members, 0),
      skipped: skippedCounts,
    },
  };
  if (planning.blocked) plan.removalsBlocked = planning.blocked;
  return plan;
}

/**
 * Takes out of an IdP read what must not be synced or stored as it is: groups with an over-long id
 * or name (skipped whole), and members with an over-long id (left out). What is kept is bounded.
 */
export function screenGroups(groups: readonly DirectoryGroup[]): { groups: DirectoryGroup[]; screenedOut: ScreenedOut } {
  const kept: DirectoryGroup[] = [];
  const screenedOut: ScreenedOut = { skipped: [], ids: [], groups: 0 };
  for (const group of groups) {
    const problem = groupValueProblem(group);
    if (problem) {
      screenedOut.groups++;
      screenedOut.skipped.push({ sourceGroupId: clip(group.id), reason: 'value-too-long', message: problem.message });
      if (problem.field !== 'id') screenedOut.ids.push(group.id);
      continue;
    }
    if (!group.memberIds.some(idTooLong)) {
      kept.push(group);
      continue;
    }
    const memberIds = group.memberIds.filter((id) => !idTooLong(id));
    const left = group.memberIds.length - memberIds.length;
    kept.push({ ...group, memberIds });
    screenedOut.skipped.push({
      sourceGroupId: group.id,
      reason: 'value-too-long',
      message: `${members(left)} of group ${group.name} named by an id longer than ${FIELD_CAPS.id} characters; left out of the group`,
    });
  }
  return { groups: kept, screenedOut };
}

/**
 * One record per id, sorted by id. A list that repeats a group (a page read twice) is merged,
 * members united and the smallest name kept, so the outcome does not depend on which copy came first.
 */
function uniqueGroups(list: readonly GroupRecord[]): GroupRecord[] {
  const byId = new Map<string, GroupRecord>();
  for (const group of list) {
    const held = byId.get(group.id);
    if (!held) byId.set(group.id, group);
    else
      byId.set(group.id, {
        id: group.id,
        name: compare(group.name, held.name) < 0 ? group.name : held.name,
        memberIds: [...held.memberIds, ...group.memberIds],
      });
  }
  return [...byId.values()].sort((a, b) => compare(a.id, b.id));
}

/** Case-insensitive name matching; NFC so that one name typed two ways still matches. */
function nameKey(name: string): string {
  return name.normalize('NFC').toLowerCase();
}

function members(count: number): string {
  return count === 1 ? '1 member' : `${count} members`;
}

function pushTo<T>(map: Map<string, T[]>, key: string, value: T): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
