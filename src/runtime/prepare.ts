import type { Logger } from 'pino';
import type { SyncConfig } from '../config/schema.js';
import type { DirectoryRead } from '../model/directory.js';
import { computeGroupPlan } from '../plan/groups.js';
import { groupPhaseInput, groupPlanInput, type GroupPhaseRead, type UserPhaseOutcome } from '../plan/group-input.js';
import type { GroupPhase, GroupPlan, GroupPlanPolicy } from '../plan/group-types.js';
import { SyncError } from '../model/failure.js';
import type { TvGroup, TvUser } from '../model/teamviewer.js';
import { computePlan } from '../plan/diff.js';
import type { OutsideCompanyRecord, Plan, PlanPolicy } from '../plan/types.js';
import type { DirectorySource } from '../connectors/source.js';
import type { SyncState } from '../store/sync-state.js';
import type { TeamViewerPort } from '../teamviewer/port.js';
import type { WebApiTransport } from '../teamviewer/scim-client.js';
import { DEFAULT_BACKOFF, withRetries, type BackoffPolicy } from '../net/retry.js';
import type { WrittenStore } from '../store/written.js';
import { checkGroups, checkUsers } from '../plan/drift.js';
import { checkSeats } from './company.js';

/** Everything one sync needs to read both sides and plan; the edges are passed in, so tests swap them. */
export interface SyncSides {
  sync: SyncConfig;
  source: DirectorySource;
  client: TeamViewerPort;
  /** The checked Web API v1 call beside SCIM, for the optional features (roles, seats, SSO health); absent, they report themselves off. */
  webApi?: WebApiTransport;
  state: SyncState;
  log: Logger;
  now: () => number;
  /** Retries of the TeamViewer reads (transient and rate-limited answers). */
  readBackoff?: BackoffPolicy;
  /** What tvsync's writes left objects in (checkWrites): absent, writes are not checked. */
  written?: WrittenStore;
}

export interface PreparedPlan {
  plan: Plan;
  directory: DirectoryRead;
  teamviewer: TvUser[];
  /** The outside-company records the plan was made with. */
  outsideCompany: ReadonlyMap<string, OutsideCompanyRecord>;
  /** The links the plan was made with (IdP user id → TeamViewer user id), before its own link changes. */
  links: Map<string, string>;
  tokenOwner?: string;
}

export function planPolicy(
  sync: SyncConfig,
  tokenOwner: string | undefined,
  approved?: ReadonlySet<string>,
  fastLane?: { held: ReadonlySet<string>; recentDeactivations: number },
  approvedRecycled?: ReadonlySet<string>,
): PlanPolicy {
  const policy: PlanPolicy = {
    protect: sync.protect,
    threshold: sync.policy.deactivationThreshold,
    outsideCompanyRetryMs: sync.policy.outsideCompanyRetry,
    recycledAddresses: sync.policy.recycledAddresses,
  };
  if (approvedRecycled?.size) policy.approvedRecycled = approvedRecycled;
  if (sync.ssoCustomerId) policy.ssoCustomerId = sync.ssoCustomerId;
  if (tokenOwner) policy.tokenOwnerEmail = tokenOwner;
  if (approved) policy.approvedDeactivations = approved;
  if (fastLane?.held.size) policy.heldByFastLane = fastLane.held;
  if (fastLane?.recentDeactivations) policy.recentDeactivations = fastLane.recentDeactivations;
  return policy;
}

export function withTeamViewerRetries<T>(sides: SyncSides, what: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  return withRetries(fn, sides.readBackoff ?? DEFAULT_BACKOFF, {
    ...(signal ? { signal } : {}),
    onRetry: (err, waitMs, attempt) =>
      sides.log.warn({ what, failureClass: err.failureClass, waitMs, attempt: attempt + 1, err: err.message }, 'TeamViewer read failed; retrying'),
  });
}

/**
 * The token owner must never be deactivated: from config, else asked of TeamViewer. A token
 * without account permission (403/404) just leaves it unknown; a lookup that failed otherwise
 * leaves the owner unprotected, so the plan then deactivates nobody.
 */
export async function resolveTokenOwner(sides: SyncSides, signal?: AbortSignal): Promise<{ email?: string; failed?: string }> {
  if (sides.sync.target.tokenOwner) return { email: sides.sync.target.tokenOwner };
  try {
    const owner = await withTeamViewerRetries(sides, 'token owner', () => sides.client.getTokenOwner(signal ? { signal } : {}), signal);
    return owner ? { email: owner.email } : {};
  } catch (err) {
    if (err instanceof SyncError && err.failureClass === 'unauthorised') throw err;
    if (signal?.aborted) throw err;
    const message = err instanceof Error ? err.message : String(err);
    sides.log.warn({ sync: sides.sync.name, err: message }, 'could not look up the token owner');
    return { failed: message };
  }
}

/**
 * Reads the IdP and TeamViewer and computes the plan. A failed IdP read throws (SourceReadError):
 * no plan, so nothing is deactivated, and the caller reports why. `signal` ends every read at
 * once (shutdown): the cycle is then handed back, not planned from half an answer.
 */
export async function readAndPlan(
  sides: SyncSides,
  opts: {
    approved?: ReadonlySet<string>;
    approvedRecycled?: ReadonlySet<string>;
    signal?: AbortSignal;
    fastLane?: { held: ReadonlySet<string>; recentDeactivations: number };
    recordSeen?: boolean;
  } = {},
): Promise<PreparedPlan> {
  const { signal } = opts;
  const [directory, teamviewer, owner, links, outsideCompany, written, deactivatedByTvsync] = await Promise.all([
    sides.source.read(signal ? { signal } : {}),
    withTeamViewerRetries(sides, 'user list', () => sides.client.listUsers(signal ? { signal } : {}), signal),
    resolveTokenOwner(sides, signal),
    sides.state.loadLinks(),
    sides.state.loadOutsideCompany(),
    sides.written?.loadUsers(),
    sides.state.loadDeactivated(),
  ]);
  const guarded = owner.failed
    ? {
        ...directory,
        complete: false,
        incompleteReason: `the owner of the TeamViewer token could not be looked up (${owner.failed}), so it could not be protected; set target.tokenOwner`,
      }
    : directory;
  const computed = computePlan({
    directory: guarded,
    teamviewer,
    links,
    outsideCompany,
    deactivatedByTvsync,
    nowMs: sides.now(),
    policy: planPolicy(sides.sync, owner.email, opts.approved, opts.fastLane, opts.approvedRecycled),
  });
  const plan = await checkSeats(sides, computed, signal);
  if (!owner.email && !owner.failed)
    plan.notices.push(
      'The owner of the TeamViewer token is unknown (the token may lack account read permission); set target.tokenOwner so it is protected by name.',
    );
  if (!sides.state.durable)
    plan.notices.push('No Redis: links are unknown, users are matched by e-mail only, and no removed user can be recognised for deactivation.');
  for (const issue of directory.issues) sides.log.warn({ sync: sides.sync.name, issue }, 'IdP record skipped');
  if (written && sides.written) {
    // Writes checked against this read: what the last writes left, as TeamViewer shows it now.
    const { check, updates } = checkUsers({ records: written, teamviewer, operations: plan.operations });
    if (check.notKept.length || check.drift.length) plan.writeCheck = check;
    if (opts.recordSeen) await sides.written.apply(updates);
  }
  const prepared: PreparedPlan = { plan, directory, teamviewer, outsideCompany, links };
  if (owner.email) prepared.tokenOwner = owner.email;
  return prepared;
}

/**
 * Plans the group phase, after the user operations of the cycle: members are the TeamViewer users
 * the user phase linked. A tenant whose /Groups answers "not there" gets no group sync, and users
 * keep syncing.
 */
export async function planGroups(
  sides: SyncSides,
  directory: GroupPhaseRead,
  userPhase: UserPhaseOutcome,
  opts: {
    approvedDeletions?: ReadonlySet<string>;
    approvedMemberRemovals?: ReadonlyMap<string, number>;
    extraUserLinks?: ReadonlyMap<string, string>;
    /**
     * The links as the cycle read them before its user phase: only the links of the users the
     * phase touched (its plan's link changes and operations) are read again, not every link.
     * Taken over and brought up to date in place.
     */
    linksBefore?: Map<string, string>;
    signal?: AbortSignal;
    /** Record what this read confirmed of earlier writes (a cycle; a preview leaves the records alone). */
    recordSeen?: boolean;
  } = {},
): Promise<GroupPhase> {
  let teamviewerGroups: TvGroup[];
  try {
    teamviewerGroups = await withTeamViewerRetries(sides, 'group list', () => sides.client.listGroups(opts.signal ? { signal: opts.signal } : {}), opts.signal);
  } catch (err) {
    // A token without the user-group permissions gets 403: that must not stop the users' sync either.
    if (err instanceof SyncError && (err.failureClass === 'unavailable' || err.failureClass === 'forbidden' || err.failureClass === 'not-found')) {
      const why = err.failureClass === 'forbidden' ? 'the token may lack the user-group permissions' : 'this company may not have SCIM groups';
      return { status: 'unavailable', detail: `TeamViewer refused /Groups (${err.message}; ${why}); users are still synced` };
    }
    throw err;
  }
  const [groupLinks, storedUserLinks] = await Promise.all([sides.state.loadGroupLinks(), userLinksAfter(sides.state, userPhase.plan, opts.linksBefore)]);
  let userLinks = storedUserLinks;
  if (opts.extraUserLinks?.size) {
    userLinks = new Map(storedUserLinks);
    for (const [sourceId, tvUserId] of opts.extraUserLinks) userLinks.set(sourceId, tvUserId);
  }
  const inRead = new Set(directory.groups.map((g) => g.id));
  const missing = [...groupLinks.keys()].filter((id) => !inRead.has(id));
  let goneGroups = new Map<string, 'deleted' | 'out-of-scope'>();
  if (missing.length > 0 && sides.source.lookupGroups) {
    try {
      goneGroups = await sides.source.lookupGroups(missing);
    } catch (err) {
      // Not knowing only means such groups are left alone this cycle.
      sides.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'could not ask the IdP about groups that left the read');
    }
  }
  const policy: Omit<GroupPlanPolicy, 'deactivationsThisCycle'> = {
    batchSize: sides.sync.groups.batchSize,
    onIdpDelete: sides.sync.groups.onIdpDelete,
    threshold: sides.sync.policy.deactivationThreshold,
    memberRemovalThreshold: sides.sync.policy.memberRemovalThreshold,
  };
  if (opts.approvedDeletions) policy.approvedDeletions = opts.approvedDeletions;
  if (opts.approvedMemberRemovals) policy.approvedMemberRemovals = opts.approvedMemberRemovals;
  const plan = computeGroupPlan(groupPlanInput(directory, userPhase, { teamviewerGroups, groupLinks, userLinks, goneGroups }, policy));
  if (sides.written) {
    const { check, updates } = checkGroups({ records: await sides.written.loadGroups(), teamviewerGroups, operations: plan.operations });
    if (check.notKept.length || check.drift.length) plan.writeCheck = check;
    if (opts.recordSeen) await sides.written.apply(updates);
  }
  return { status: 'synced', plan };
}

/**
 * The user links after the user phase. Of the links read before it, only those of the users its
 * plan relinked, unlinked or operated on can have changed since (user syncs wait while a cycle
 * runs): those are read again, which for a steady cycle is a few hundred links instead of all.
 */
async function userLinksAfter(state: SyncState, plan: Plan, before: Map<string, string> | undefined): Promise<Map<string, string>> {
  if (!before) return state.loadLinks();
  const touched = new Set<string>();
  for (const change of plan.links) touched.add(change.sourceId);
  for (const op of plan.operations) touched.add(op.sourceId);
  // Most of many users touched (a first cycle): one read of all is cheaper than asking for each.
  if (touched.size > 10_000 && touched.size * 2 > before.size) return state.loadLinks();
  const ids = [...touched];
  const now = await state.getLinks(ids);
  for (const id of ids) {
    const tvUserId = now.get(id);
    if (tvUserId === undefined) before.delete(id);
    else before.set(id, tvUserId);
  }
  return before;
}

/** Records the group plan's link changes; a link of a group being deleted goes once the delete has run. */
export async function applyGroupLinkChanges(state: SyncState, plan: GroupPlan): Promise<void> {
  const deleting = new Set(plan.operations.filter((op) => op.kind === 'deleteGroup').map((op) => op.sourceGroupId));
  for (const change of plan.links) {
    if (change.action === 'set') await state.setGroupLink(change.sourceGroupId, change.tvGroupId);
    else if (!(change.reason === 'deleted' && deleting.has(change.sourceGroupId))) await state.dropGroupLink(change.sourceGroupId, change.tvGroupId);
  }
}

/**
 * For `tvsync plan`: the group phase as it would run after this plan's user operations. Users the
 * plan would create stand in under placeholder ids, so their memberships show up as planned.
 */
export async function previewGroups(sides: SyncSides, prepared: PreparedPlan): Promise<GroupPhase> {
  if (!sides.sync.groups.enabled) return { status: 'skipped', detail: 'group sync is off (groups.enabled: false)' };
  const extraUserLinks = new Map<string, string>();
  for (const change of prepared.plan.links) if (change.action === 'set') extraUserLinks.set(change.sourceId, change.tvUserId);
  for (const op of prepared.plan.operations) if (op.kind === 'createUser') extraUserLinks.set(op.sourceId, `(new ${op.email})`);
  return planGroups(sides, groupPhaseInput(prepared.directory, { emails: true }), { plan: prepared.plan, results: [] }, { extraUserLinks });
}
