import type { GroupPhaseRead } from '../plan/group-input.js';
import type { GroupPhase } from '../plan/group-types.js';
import type { ReadFacts } from '../plan/guards.js';
import type { OperationResult } from '../plan/report.js';
import {
  computeRolePlan,
  roleRemovalGuard,
  rolesToRead,
  type CurrentRoleAssignments,
  type MadeRoleAssignment,
  type RoleOperation,
  type RolePhase,
  type RolePlan,
} from '../plan/roles.js';
import type { Plan } from '../plan/types.js';
import { SyncError } from '../model/failure.js';
import { RolesClient, ROLE_ACCOUNT_BATCH } from '../teamviewer/roles-client.js';
import { withTeamViewerRetries, type PreparedPlan, type SyncSides } from './prepare.js';

/**
 * The role phase of a cycle, after the group phase: read TeamViewer's roles and the assignments of
 * the roles concerned, plan (pure), and apply the plan directly, one call at a time. A token without
 * the user-role permission turns the phase off with one line; the users' and groups' sync is not
 * affected.
 */

export const ROLES_FORBIDDEN = 'roles: the token lacks the user-role permission; roles are not synced';

export interface RolePhaseContext {
  plan: Plan;
  directoryGroups: GroupPhaseRead;
  groupPhase?: GroupPhase | undefined;
  /** Links the plan would make (for `tvsync plan`): IdP user id → TeamViewer user id or a placeholder. */
  extraUserLinks?: ReadonlyMap<string, string>;
  extraGroupLinks?: ReadonlyMap<string, string>;
  signal?: AbortSignal;
}

/** Reads and plans the role phase; undefined when roles are off for this sync. */
export async function planRoles(sides: SyncSides, ctx: RolePhaseContext): Promise<RolePhase | undefined> {
  const { roles: config } = sides.sync;
  if (!config.enabled) return undefined;
  if (!sides.webApi) return { status: 'unavailable', detail: 'roles: no Web API client is configured; roles are not synced' };
  const client = new RolesClient(sides.webApi);
  const { signal } = ctx;
  const opts = signal ? { signal } : {};
  try {
    const [roles, made, storedGroupLinks, storedUserLinks] = await Promise.all([
      withTeamViewerRetries(sides, 'user roles', () => client.listRoles(opts), signal),
      sides.state.loadRoleAssignments(),
      sides.state.loadGroupLinks(),
      sides.state.loadLinks(),
    ]);
    const current = new Map<string, CurrentRoleAssignments>();
    for (const role of rolesToRead(config.mappings, roles, made)) {
      const groups = await withTeamViewerRetries(sides, 'role assignments', () => client.listGroupAssignments(role.id, opts), signal);
      const accounts = await withTeamViewerRetries(sides, 'role assignments', () => client.listAccountAssignments(role.id, opts), signal);
      current.set(role.id, { groups: new Set(groups), accounts: new Set(accounts) });
    }
    const groupLinks = new Map([...storedGroupLinks, ...(ctx.extraGroupLinks ?? [])]);
    const userLinks = new Map([...storedUserLinks, ...(ctx.extraUserLinks ?? [])]);
    const groupsSynced = sides.sync.groups.enabled && ctx.groupPhase?.status === 'synced';
    const removalsBlocked = roleRemovalGuard({
      groupRemovalsBlocked: ctx.groupPhase?.status === 'synced' ? ctx.groupPhase.plan.removalsBlocked : undefined,
      groupsSynced,
      usersBlocked: ctx.plan.deactivationsBlocked,
      read: readOf(ctx.directoryGroups),
      groupLinks: groupLinks.size,
    });
    const plan = computeRolePlan({
      mappings: config.mappings,
      roles,
      groups: ctx.directoryGroups.groups,
      groupsSynced,
      groupLinks,
      userLinks,
      userEmails: new Map(ctx.directoryGroups.emails ?? []),
      current,
      made,
      ...(ctx.plan.tokenOwnerTvUserId ? { tokenOwnerTvUserId: ctx.plan.tokenOwnerTvUserId } : {}),
      protectedTvUserIds: new Set(ctx.plan.protectedTvUserIds ?? []),
      removalsBlocked,
      threshold: sides.sync.policy.memberRemovalThreshold,
      batchSize: ROLE_ACCOUNT_BATCH,
    });
    return { status: 'synced', plan };
  } catch (err) {
    if (signal?.aborted || (err instanceof SyncError && err.failureClass === 'unauthorised')) throw err;
    if (err instanceof SyncError && err.failureClass === 'forbidden') return { status: 'unavailable', detail: ROLES_FORBIDDEN };
    return { status: 'failed', detail: `roles: reading TeamViewer's user roles failed, no role changed: ${err instanceof Error ? err.message : String(err)}` };
  }
}

/** For `tvsync plan`: the role phase as it would run after this plan's user and group operations. */
export function previewRoles(
  sides: SyncSides,
  prepared: PreparedPlan,
  groupPhase: GroupPhase,
  directoryGroups: GroupPhaseRead,
): Promise<RolePhase | undefined> {
  const extraUserLinks = new Map<string, string>();
  for (const change of prepared.plan.links) if (change.action === 'set') extraUserLinks.set(change.sourceId, change.tvUserId);
  for (const op of prepared.plan.operations) if (op.kind === 'createUser') extraUserLinks.set(op.sourceId, `(new ${op.email})`);
  const extraGroupLinks = new Map<string, string>();
  if (groupPhase.status === 'synced') {
    for (const change of groupPhase.plan.links) if (change.action === 'set') extraGroupLinks.set(change.sourceGroupId, change.tvGroupId);
    for (const op of groupPhase.plan.operations) if (op.kind === 'createGroup') extraGroupLinks.set(op.sourceGroupId, `(new ${op.displayName})`);
  }
  return planRoles(sides, { plan: prepared.plan, directoryGroups, groupPhase, extraUserLinks, extraGroupLinks });
}

/**
 * Applies a role plan, one call at a time (account batches of at most 100), and records which
 * assignments tvsync made, so that only those are ever taken back. Each outcome goes to `record`.
 */
export async function applyRoles(sides: SyncSides, plan: RolePlan, record: (result: OperationResult) => Promise<void>): Promise<void> {
  if (!sides.webApi) return;
  const client = new RolesClient(sides.webApi);
  for (const op of plan.operations) {
    let result: OperationResult;
    const records = recordsOf(op);
    // An assignment is recorded before it is sent: a record lost after TeamViewer took the write
    // would leave a role tvsync could never take back. A write that surely did not happen unrecords it.
    let recorded = false;
    try {
      if (op.kind === 'assignRole') {
        await sides.state.recordRoleAssignments(records, sides.now());
        recorded = true;
      }
      await withTeamViewerRetries(sides, 'role assignment', () => write(client, op));
      if (op.kind === 'unassignRole') await sides.state.forgetRoleAssignments(records);
      result = resultOf(op, 'applied', op.message);
    } catch (err) {
      const maybeApplied = err instanceof SyncError && (err.maybeApplied === true || err.failureClass === 'transient');
      if (recorded && !maybeApplied) await sides.state.forgetRoleAssignments(records).catch(() => undefined);
      if (err instanceof SyncError && err.failureClass === 'unauthorised') throw err;
      const failureClass = err instanceof SyncError ? err.failureClass : undefined;
      const why = failureClass === 'forbidden' ? 'the token lacks the user-role permission' : err instanceof Error ? err.message : String(err);
      result = { ...resultOf(op, 'failed', `${op.message}: ${why}`), ...(failureClass ? { failureClass } : {}) };
      sides.log.warn({ key: op.key, failureClass, err: why }, 'role assignment failed');
    }
    await record(result);
  }
  await sides.state.forgetRoleAssignments(plan.forget);
}

function write(client: RolesClient, op: RoleOperation): Promise<void> {
  const assign = op.kind === 'assignRole';
  if (op.target === 'usergroup') {
    const groupId = op.tvGroupId ?? '';
    return assign ? client.assignGroup(op.roleId, groupId) : client.unassignGroup(op.roleId, groupId);
  }
  const ids = op.userIds ?? [];
  return assign ? client.assignAccounts(op.roleId, ids) : client.unassignAccounts(op.roleId, ids);
}

function recordsOf(op: RoleOperation): MadeRoleAssignment[] {
  if (op.target === 'usergroup') return op.tvGroupId === undefined ? [] : [{ roleId: op.roleId, target: 'usergroup', id: op.tvGroupId }];
  return (op.userIds ?? []).map((id) => ({ roleId: op.roleId, target: 'account', id }));
}

function resultOf(op: RoleOperation, status: 'applied' | 'failed', message: string): OperationResult {
  const result: OperationResult = {
    key: op.key,
    kind: op.kind,
    sourceId: op.sourceGroupId ?? op.roleId,
    role: op.roleName,
    roleId: op.roleId,
    after: {},
    status,
    message,
    attempts: 1,
  };
  if (op.tvGroupId !== undefined) result.tvGroupId = op.tvGroupId;
  if (op.sourceGroupId !== undefined) result.sourceGroupId = op.sourceGroupId;
  if (op.members !== undefined) result.members = op.members;
  return result;
}

/** The read facts of a stored cycle; one stored before they were kept has only `complete`. */
function readOf(directory: GroupPhaseRead): ReadFacts {
  return directory.read ?? { complete: directory.complete, users: 1, groups: directory.groups.length, doubtful: { users: 0, groups: 0 } };
}
