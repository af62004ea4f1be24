import type { DirectoryGroupRef, UserLookup } from '../model/directory.js';
import type { TvGroup, TvUser } from '../model/teamviewer.js';
import { planChange, planCreate, protectionOf, skip } from './diff.js';
import type { GroupOperation, GroupSkippedItem } from './group-types.js';
import { clip, emailKey, FIELD_CAPS, mapDirectoryUser } from './mapping.js';
import { type DeactivationRecord, recycledAddress } from './recycled.js';
import { exceedsThreshold, type RemovalThreshold } from './threshold.js';
import type { ChangeUserOperation, LinkChange, OutsideCompanyRecord, PlanPolicy, SkippedItem, UserOperation } from './types.js';

/*
 * One person's plan, for the fast lane and `tvsync sync-user`. The same rules as a cycle's plan
 * (mapping, protect list, token owner, matching by link then e-mail), with two differences a single
 * person needs: the threshold counts removals over a sliding window (a burst of events must not do
 * what the cycle's threshold would stop), and anything that needs the whole directory to decide
 * (an address another IdP user's link holds) is left to the cycle. Pure.
 */

/** One line of the step report: what was looked at, and what it showed. */
export interface UserSyncStep {
  step: 'idp' | 'scope' | 'mapping' | 'teamviewer' | 'link' | 'decision' | 'groups';
  detail: string;
}

export interface RemovalWindow {
  /** Removals of this kind the fast lane made within the window, before this one. */
  recent: number;
  /** What the sync manages (users linked, or memberships of managed groups): the percentage's base. */
  managed: number;
  threshold: RemovalThreshold;
  windowMs: number;
}

export interface UserSyncInput {
  /** What the operator or the event named. */
  ref: string;
  lookup: UserLookup;
  /** The IdP id the decision is about (the looked-up user's, or the one the link names). */
  sourceId?: string;
  /** The TeamViewer user the sync's link names for `sourceId`, and whether TeamViewer still has it. */
  linked?: { tvUserId: string; tv?: TvUser };
  /** The TeamViewer user holding the IdP user's address, when there is one. */
  byEmail?: TvUser;
  /**
   * Other IdP ids this sync links to `byEmail`, and whether the IdP still has each in scope (re-read
   * by the caller). One in scope keeps the address (the cycle, which sees everyone, decides); those
   * gone lose their link to this person, as the cycle's relink does.
   */
  byEmailHolders?: readonly { sourceId: string; inScope: boolean }[];
  /**
   * For a removal: an IdP user in scope, with another id, that now holds the linked TeamViewer
   * user's address (a rehire, an id change). The TeamViewer user is then not deactivated.
   */
  addressHeldBy?: string;
  /** Another IdP user in scope with the same address: neither is created (as in the cycle). */
  duplicateOf?: string;
  /** tvsync's record of deactivating `byEmail`, if it did: a recycled address even after the link went. */
  byEmailDeactivated?: DeactivationRecord;
  outsideCompany?: OutsideCompanyRecord;
  nowMs: number;
  policy: PlanPolicy;
  deactivations: RemovalWindow;
}

export interface UserSyncPlan {
  ref: string;
  sourceId?: string;
  email?: string;
  scope: UserLookup['status'];
  steps: UserSyncStep[];
  operation?: UserOperation;
  /** A deactivation over the sliding-window threshold: held for approval. */
  held?: ChangeUserOperation;
  skipped?: SkippedItem;
  links: LinkChange[];
  /** The TeamViewer user the person is (or, after a create, will be): memberships are planned for it. */
  tvUserId?: string;
  /** Whether the person's TeamViewer user must keep every membership (protected, or a removal held). */
  keepMemberships: boolean;
  /** Groups in scope the person is in, for the membership plan; empty when out of scope. */
  wantedGroups: DirectoryGroupRef[];
  groupsComplete: boolean;
  /** A recycled address this plan takes over, and what released it (an approval is then used up). */
  recycled?: { tvUserId: string; released: 'approved' | 'policy' };
}

export function planUserSync(input: UserSyncInput): UserSyncPlan {
  const { lookup } = input;
  const steps: UserSyncStep[] = [];
  const plan: UserSyncPlan = { ref: input.ref, scope: lookup.status, steps, links: [], keepMemberships: false, wantedGroups: [], groupsComplete: true };
  if (input.sourceId !== undefined) plan.sourceId = input.sourceId;

  if (lookup.status === 'not-found') steps.push({ step: 'idp', detail: `the IdP holds no user ${clip(input.ref)}: ${lookup.why}` });
  else steps.push({ step: 'idp', detail: describeIdpUser(lookup.user, input.ref) });
  steps.push({ step: 'scope', detail: `${lookup.status === 'in-scope' ? 'in scope' : 'not in scope'}: ${lookup.why}` });

  const linkedTv = input.linked?.tv;
  if (input.linked) {
    steps.push({
      step: 'link',
      detail: linkedTv
        ? `linked to TeamViewer user ${linkedTv.id} (${linkedTv.email || linkedTv.userName}, ${linkedTv.active ? 'active' : 'deactivated'})`
        : `linked to TeamViewer user ${input.linked.tvUserId}, which TeamViewer no longer has`,
    });
  } else steps.push({ step: 'link', detail: 'not linked to a TeamViewer user yet' });

  if (lookup.status !== 'in-scope') return planRemoval(input, plan);

  const mapped = mapDirectoryUser(lookup.user);
  if (!mapped.ok) {
    steps.push({ step: 'mapping', detail: mapped.message });
    plan.skipped = skip(mapped.reason, mapped.message, { sourceId: mapped.sourceId, email: mapped.email });
    plan.keepMemberships = true;
    if (linkedTv) plan.tvUserId = linkedTv.id;
    return decided(plan, `nothing is done: ${mapped.message}`);
  }
  plan.email = mapped.email;
  plan.wantedGroups = [...lookup.groups].sort((a, b) => compare(a.name, b.name) || compare(a.id, b.id));
  plan.groupsComplete = lookup.groupsComplete;
  steps.push({
    step: 'mapping',
    detail: `maps to ${mapped.email} "${mapped.displayName}", ${mapped.active ? 'active' : 'disabled'}${mapped.preferredLanguage ? `, language ${mapped.preferredLanguage}` : ''}`,
  });

  let tv = linkedTv;
  let recycledNote: string | undefined;
  if (tv && emailKey(tv.email || tv.userName) !== mapped.emailKey) {
    const tvEmail = tv.email || tv.userName;
    plan.skipped = skip(
      'email-change-unsupported',
      `The IdP changed this user's e-mail from ${tvEmail} to ${mapped.email}; TeamViewer cannot change an e-mail, so tvsync keeps the TeamViewer user ${tv.id} (${tvEmail}) and creates no second one.`,
      { sourceId: mapped.sourceId, email: mapped.email, tvUserId: tv.id },
    );
  }
  if (!tv) {
    const found = input.byEmail;
    if (found) {
      steps.push({
        step: 'teamviewer',
        detail: `TeamViewer holds ${found.email || found.userName} as ${found.id} (${found.active ? 'active' : 'deactivated'})`,
      });
      const others = (input.byEmailHolders ?? []).filter((h) => h.sourceId !== mapped.sourceId);
      const present = others.find((h) => h.inScope);
      if (present) {
        plan.skipped = skip(
          'email-held-by-other-user',
          `${mapped.email} is held in TeamViewer by user ${found.id}, which this sync links to IdP user ${clip(present.sourceId)}; it is not taken over.`,
          { sourceId: mapped.sourceId, email: mapped.email, tvUserId: found.id },
        );
        return decided(plan, plan.skipped.message);
      }
      // Then, as in the cycle: a deactivated user of another person's is a recycled address, held for a person.
      const recycled = recycledAddress(
        { sourceId: mapped.sourceId, email: mapped.email, tv: found, holders: others.map((h) => h.sourceId), deactivated: input.byEmailDeactivated },
        input.policy,
      );
      if (recycled.recycled && 'held' in recycled) {
        plan.skipped = recycled.held;
        plan.keepMemberships = true;
        return decided(plan, recycled.held.message);
      }
      tv = found;
      for (const gone of others) plan.links.push({ action: 'drop', sourceId: gone.sourceId, tvUserId: found.id, reason: 'relinked' });
      plan.links.push({ action: 'set', sourceId: mapped.sourceId, tvUserId: found.id, reason: 'matched-by-email' });
      if (recycled.recycled) {
        plan.recycled = { tvUserId: found.id, released: recycled.released };
        recycledNote = recycled.note;
      }
    } else {
      steps.push({ step: 'teamviewer', detail: `TeamViewer holds no user ${mapped.email}` });
    }
  } else {
    steps.push({ step: 'teamviewer', detail: `TeamViewer holds ${tv.id} as "${clip(tv.displayName)}", ${tv.active ? 'active' : 'deactivated'}` });
  }
  if (input.linked && !linkedTv)
    plan.links.push({ action: 'drop', sourceId: mapped.sourceId, tvUserId: input.linked.tvUserId, reason: 'teamviewer-user-gone' });

  if (!tv && input.duplicateOf !== undefined) {
    plan.skipped = skip(
      'duplicate-email',
      `${mapped.email} is used by more than one IdP user in scope (also ${clip(input.duplicateOf)}); none of them is created or changed until the IdP has one owner for it`,
      { sourceId: mapped.sourceId, email: mapped.email },
    );
    return decided(plan, plan.skipped.message);
  }
  if (!tv) {
    const create = planCreate(mapped, {
      outsideCompany: new Map(input.outsideCompany ? [[mapped.emailKey, input.outsideCompany]] : []),
      nowMs: input.nowMs,
      policy: input.policy,
    });
    if ('kind' in create) {
      plan.operation = create;
      return decided(plan, create.message);
    }
    plan.skipped = create;
    return decided(plan, create.message);
  }
  plan.tvUserId = tv.id;
  // As in the cycle: the protect list and the token owner are never removed from a group either.
  if (protectionOf(input.policy, tv.email || tv.userName) || protectionOf(input.policy, tv.userName)) plan.keepMemberships = true;
  const change = planChange(mapped, tv);
  if (change && recycledNote) change.message = `${change.message}; ${recycledNote}`;
  if (!change) return decided(plan, plan.skipped ? plan.skipped.message : `nothing to change: TeamViewer already matches the IdP`);
  if (change.kind !== 'deactivateUser') {
    plan.operation = change;
    return decided(plan, change.message);
  }
  return gateDeactivation(change, input, plan);
}

/** The person left the scope, or the IdP no longer has them: the linked TeamViewer user is deactivated. */
function planRemoval(input: UserSyncInput, plan: UserSyncPlan): UserSyncPlan {
  const linked = input.linked;
  if (!linked || input.sourceId === undefined) return decided(plan, 'nothing to do: this sync manages no TeamViewer user for this person');
  if (!linked.tv) {
    plan.links.push({ action: 'drop', sourceId: input.sourceId, tvUserId: linked.tvUserId, reason: 'teamviewer-user-gone' });
    return decided(plan, 'nothing to do: the TeamViewer user is gone; the link is dropped');
  }
  const tv = linked.tv;
  plan.tvUserId = tv.id;
  plan.email = tv.email || tv.userName;
  if (protectionOf(input.policy, plan.email) || protectionOf(input.policy, tv.userName)) plan.keepMemberships = true;
  if (!tv.active) return decided(plan, `nothing to do: ${plan.email} is already deactivated in TeamViewer`);
  if (input.addressHeldBy !== undefined) {
    // A rehire or a new id for the same person: the cycle, which sees both, relinks instead.
    plan.keepMemberships = true;
    return decided(
      plan,
      `not deactivated: ${plan.email} now belongs to IdP user ${clip(input.addressHeldBy)}, who is in scope; the next cycle links it to that user`,
    );
  }
  const why =
    input.lookup.status === 'not-found' ? `IdP user ${clip(input.sourceId)} no longer exists` : `IdP user ${clip(input.sourceId)} is no longer in scope`;
  return gateDeactivation(
    {
      kind: 'deactivateUser',
      sourceId: input.sourceId,
      email: plan.email,
      tvUserId: tv.id,
      changes: { active: false },
      before: { displayName: clip(tv.displayName, FIELD_CAPS.name), active: tv.active },
      reason: 'removed-from-scope',
      message: `deactivate ${plan.email}: ${why}`,
    },
    input,
    plan,
  );
}

/** Protect list and token owner first, then the sliding-window threshold; approved deactivations pass it. */
function gateDeactivation(op: ChangeUserOperation, input: UserSyncInput, plan: UserSyncPlan): UserSyncPlan {
  const keepRename = (): void => {
    if (op.changes.displayName === undefined) return;
    plan.operation = {
      ...op,
      kind: 'updateUser',
      reason: 'attributes-changed',
      changes: { displayName: op.changes.displayName },
      message: `update ${op.email}: name "${op.before.displayName}" → "${op.changes.displayName}"`,
    };
  };
  const who = protectionOf(input.policy, op.email);
  if (who) {
    plan.skipped = skip('protected', `${op.email} would be deactivated (${op.reason}) but is ${who}; left active`, {
      sourceId: op.sourceId,
      email: op.email,
      tvUserId: op.tvUserId,
    });
    plan.keepMemberships = true;
    keepRename();
    return decided(plan, plan.skipped.message);
  }
  const window = input.deactivations;
  const approved = input.policy.approvedDeactivations?.has(op.tvUserId) ?? false;
  if (!approved && exceedsThreshold(window.threshold, window.recent + 1, window.managed)) {
    plan.held = op;
    plan.keepMemberships = true;
    keepRename();
    return decided(
      plan,
      `${op.message}; held for approval: it would be deactivation ${window.recent + 1} within ${formatWindow(window.windowMs)} of ${window.managed} managed users, over the threshold (more than ${window.threshold.maxCount}, or more than ${window.threshold.maxPercent}%)`,
    );
  }
  plan.operation = op;
  return decided(plan, approved ? `${op.message} (approved)` : op.message);
}

export interface MembershipInput {
  tvUserId: string;
  email?: string;
  sourceId?: string;
  wanted: readonly DirectoryGroupRef[];
  groupsComplete: boolean;
  /** The sync's group links: IdP group id → TeamViewer group id. */
  groupLinks: ReadonlyMap<string, string>;
  /** TeamViewer's groups, with their members. */
  teamviewerGroups: readonly TvGroup[];
  /** The person's memberships must all stay (protected, a deactivation held or blocked). */
  keepMemberships: boolean;
  removals: RemovalWindow;
  /** TeamViewer group id → member removals a person approved there. */
  approvedRemovals?: ReadonlyMap<string, number>;
}

export type MemberOperation = Extract<GroupOperation, { kind: 'addGroupMembers' | 'removeGroupMembers' }>;

export interface MembershipPlan {
  operations: MemberOperation[];
  /** Removals over the sliding-window threshold, held for approval per group. */
  held: { sourceGroupId: string; tvGroupId: string; displayName: string; message: string }[];
  skipped: GroupSkippedItem[];
  /** Groups in scope that TeamViewer has no linked group for yet: the next cycle creates them. */
  waitingForCycle: DirectoryGroupRef[];
  steps: UserSyncStep[];
}

/** The person's memberships of the groups this sync manages: added where the IdP has them, removed where it no longer does. */
export function planMemberships(input: MembershipInput): MembershipPlan {
  const out: MembershipPlan = { operations: [], held: [], skipped: [], waitingForCycle: [], steps: [] };
  const tvGroups = new Map(input.teamviewerGroups.map((g) => [g.id, g]));
  const wantedTv = new Set<string>();
  const who = input.email ?? input.tvUserId;
  const member = {
    tvUserId: input.tvUserId,
    ...(input.sourceId !== undefined ? { sourceId: input.sourceId } : {}),
    ...(input.email ? { email: input.email } : {}),
  };
  for (const group of input.wanted) {
    const tvGroupId = input.groupLinks.get(group.id);
    const tvGroup = tvGroupId === undefined ? undefined : tvGroups.get(tvGroupId);
    if (!tvGroupId || !tvGroup) {
      out.waitingForCycle.push(group);
      continue;
    }
    wantedTv.add(tvGroupId);
    if (!tvGroup.memberIds.includes(input.tvUserId)) {
      out.operations.push({
        kind: 'addGroupMembers',
        key: `add:${tvGroupId}:${input.tvUserId}`,
        sourceGroupId: group.id,
        tvGroupId,
        memberIds: [input.tvUserId],
        members: [member],
        message: `add ${who} to "${clip(tvGroup.displayName)}"`,
      });
    }
  }
  const removals: { sourceGroupId: string; group: TvGroup }[] = [];
  for (const [sourceGroupId, tvGroupId] of [...input.groupLinks].sort((a, b) => compare(a[0], b[0]))) {
    const group = tvGroups.get(tvGroupId);
    if (!group || wantedTv.has(tvGroupId) || !group.memberIds.includes(input.tvUserId)) continue;
    if (input.wanted.some((g) => g.id === sourceGroupId)) continue;
    removals.push({ sourceGroupId, group });
  }
  let recent = input.removals.recent;
  for (const { sourceGroupId, group } of removals) {
    const label = `remove ${who} from "${clip(group.displayName)}"`;
    if (input.keepMemberships) {
      out.skipped.push({ sourceGroupId, tvGroupId: group.id, reason: 'member-kept', message: `${label}: not done, the user's own deactivation did not run` });
      continue;
    }
    if (!input.groupsComplete) {
      out.skipped.push({
        sourceGroupId,
        tvGroupId: group.id,
        reason: 'source-read-incomplete',
        message: `${label}: not done, the IdP did not list all of the user's groups`,
      });
      continue;
    }
    const approved = (input.approvedRemovals?.get(group.id) ?? 0) > 0;
    if (!approved && exceedsThreshold(input.removals.threshold, recent + 1, input.removals.managed)) {
      out.held.push({
        sourceGroupId,
        tvGroupId: group.id,
        displayName: group.displayName,
        message: `${label}: held for approval, it would be member removal ${recent + 1} within ${formatWindow(input.removals.windowMs)}, over the member-removal threshold`,
      });
      continue;
    }
    recent++;
    out.operations.push({
      kind: 'removeGroupMembers',
      key: `remove:${group.id}:${input.tvUserId}`,
      sourceGroupId,
      tvGroupId: group.id,
      memberIds: [input.tvUserId],
      members: [member],
      message: label,
    });
  }
  const adds = out.operations.filter((op) => op.kind === 'addGroupMembers').length;
  const parts = [
    `${input.wanted.length} group${input.wanted.length === 1 ? '' : 's'} in scope`,
    adds ? `${adds} to join` : '',
    removals.length ? `${removals.length} to leave` : '',
    out.held.length ? `${out.held.length} removal${out.held.length === 1 ? '' : 's'} held` : '',
    out.waitingForCycle.length
      ? `${out.waitingForCycle.length} not in TeamViewer yet (the next cycle creates ${out.waitingForCycle.length === 1 ? 'it' : 'them'})`
      : '',
  ].filter(Boolean);
  out.steps.push({ step: 'groups', detail: parts.join(', ') });
  return out;
}

function decided(plan: UserSyncPlan, detail: string): UserSyncPlan {
  plan.steps.push({ step: 'decision', detail });
  return plan;
}

function describeIdpUser(user: { id: string; email?: string; active: boolean } | undefined, ref: string): string {
  if (!user) return `the IdP holds ${clip(ref)}`;
  return `the IdP holds ${clip(user.id)}${user.email ? ` (${clip(user.email)})` : ''}, ${user.active ? 'active' : 'disabled'}`;
}

function formatWindow(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  return `${Math.round(ms / 1000)} s`;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** How a user sync came about. */
export type UserSyncTrigger = 'event' | 'hook' | 'manual';

/** One user sync, as status, the CLI, the HTTP answer and the provisioning log show it. */
export interface UserSyncReport {
  sync: string;
  /** Stable per run: `u-<time>-<job>`. */
  id: string;
  ref: string;
  sourceId?: string;
  email?: string;
  trigger: UserSyncTrigger;
  /** The feed and the IdP's event that asked for it. */
  feed?: string;
  what?: string;
  dryRun: boolean;
  scope: UserLookup['status'] | 'unknown';
  /**
   * applied: TeamViewer was changed; unchanged: nothing needed; held: a removal waits for approval;
   * skipped: a rule left the person alone; failed: the IdP or TeamViewer could not be read or written;
   * planned: a dry run that would change something.
   */
  outcome: 'applied' | 'unchanged' | 'held' | 'skipped' | 'failed' | 'planned';
  steps: UserSyncStep[];
  operations: { kind: string; message: string; status: 'applied' | 'failed' | 'planned'; failureClass?: string; tvUserId?: string }[];
  held: string[];
  skipped: string[];
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  /** When the IdP says the change happened, and how long until tvsync noticed it and until TeamViewer was written. */
  changedAt?: string;
  detectionLagMs?: number;
  latencyMs?: number;
  failure?: { failureClass: string; message: string };
}
