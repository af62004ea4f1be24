import type { GroupMember } from './group-types.js';
import type { RoleSkipReason } from './skip-reasons.js';
import { guardGroupRemovals, type ReadFacts, type RemovalBlock } from './guards.js';
import { clip } from './mapping.js';
import { exceedsThreshold, shareOf, type RemovalThreshold } from './threshold.js';

/**
 * The role plan: which TeamViewer user roles to assign to, or take from, the user groups and
 * accounts tvsync manages, so that they follow the configured IdP group → role mappings. Pure.
 *
 * Only the roles named in the mappings are assigned, and only assignments tvsync itself made (a
 * record kept between cycles) are ever taken away: a role given by hand stays. The token owner is
 * never given or stripped of a role, protected users never stripped. Removals pass the same read
 * guard as member removals and the member-removal threshold: a role assignment is a membership
 * (of a group or an account in a role), and churns like one.
 */

export type RoleTarget = 'usergroup' | 'accounts';

export interface RoleMapping {
  /** IdP group id, or its name. */
  idpGroup: string;
  /** TeamViewer role id, or its name. */
  role: string;
  assign: RoleTarget;
}

export interface RoleRef {
  id: string;
  name: string;
}

/** An assignment tvsync made (and so may take back). */
export interface MadeRoleAssignment {
  roleId: string;
  target: 'usergroup' | 'account';
  /** TeamViewer user group id, or user id (`u…`). */
  id: string;
}

export interface CurrentRoleAssignments {
  groups: ReadonlySet<string>;
  accounts: ReadonlySet<string>;
}

export interface RolePlanInput {
  mappings: readonly RoleMapping[];
  /** TeamViewer's roles. */
  roles: readonly RoleRef[];
  /** IdP groups in the read (members are IdP user ids). */
  groups: readonly { id: string; name: string; memberIds: readonly string[] }[];
  /** Whether the group phase synced this cycle: without it, the user groups' side is not known. */
  groupsSynced: boolean;
  /** IdP group id → TeamViewer group id. */
  groupLinks: ReadonlyMap<string, string>;
  /** IdP user id → TeamViewer user id. */
  userLinks: ReadonlyMap<string, string>;
  userEmails?: ReadonlyMap<string, string>;
  /** TeamViewer's assignments of the roles rolesToRead named. */
  current: ReadonlyMap<string, CurrentRoleAssignments>;
  made: readonly MadeRoleAssignment[];
  tokenOwnerTvUserId?: string;
  /** Protect list and token owner: never stripped of a role. */
  protectedTvUserIds: ReadonlySet<string>;
  /** The read guard (roleRemovalGuard): set, no role is taken away. */
  removalsBlocked: RemovalBlock | undefined;
  threshold: RemovalThreshold;
  /** Account ids per call (TeamViewer: at most 100). */
  batchSize?: number;
}

export type RoleOperationKind = 'assignRole' | 'unassignRole';

export interface RoleOperation {
  kind: RoleOperationKind;
  key: string;
  roleId: string;
  roleName: string;
  target: RoleTarget;
  /** The user group (target usergroup). */
  tvGroupId?: string;
  /** The accounts (target accounts), at most batchSize. */
  userIds?: string[];
  members?: GroupMember[];
  /** The IdP group whose mapping asks for it (assignments). */
  sourceGroupId?: string;
  message: string;
}

/** One of ROLE_SKIP_REASONS (plan/skip-reasons.ts). */
export type { RoleSkipReason } from './skip-reasons.js';

export interface RoleSkippedItem {
  reason: RoleSkipReason;
  role?: string;
  sourceGroupId?: string;
  tvGroupId?: string;
  tvUserId?: string;
  message: string;
}

export interface RolePlanSummary {
  mappings: number;
  /** Roles the plan looked at (named in the config and found, or holding assignments tvsync made). */
  roles: number;
  assigned: { groups: number; accounts: number };
  unassigned: { groups: number; accounts: number };
  /** Role removals held at the threshold. */
  held: number;
  unchanged: number;
  skipped: Partial<Record<RoleSkipReason, number>>;
}

export interface RolePlan {
  operations: RoleOperation[];
  /** Removals above the threshold: not run this cycle. */
  held: RoleOperation[];
  skipped: RoleSkippedItem[];
  /** Records of assignments TeamViewer no longer has and nobody wants: forgotten. */
  forget: MadeRoleAssignment[];
  notices: string[];
  removalsBlocked?: RemovalBlock;
  summary: RolePlanSummary;
}

/** The role phase of a cycle: a plan, or why there is none. */
export type RolePhase = { status: 'synced'; plan: RolePlan } | { status: 'unavailable' | 'failed'; detail: string };

const DEFAULT_BATCH = 100;

type RoleMatch = { role: RoleRef } | { skip: RoleSkippedItem };

/** The role a mapping names: by id, else by exact name, else by the one name equal ignoring case. */
export function resolveRole(roles: readonly RoleRef[], wanted: string): RoleMatch {
  const byId = roles.find((r) => r.id === wanted);
  if (byId) return { role: byId };
  const exact = roles.filter((r) => r.name === wanted);
  const candidates = exact.length > 0 ? exact : roles.filter((r) => r.name.toLowerCase() === wanted.toLowerCase());
  const [only] = candidates;
  if (candidates.length === 1 && only) return { role: only };
  if (candidates.length > 1) {
    return {
      skip: {
        reason: 'role-ambiguous',
        role: clip(wanted),
        message: `role ${clip(wanted)} matches ${candidates.length} TeamViewer roles by name; name it by id in roles.mappings; its mappings are skipped`,
      },
    };
  }
  return {
    skip: {
      reason: 'role-not-found',
      role: clip(wanted),
      message: `role ${clip(wanted)} named in roles.mappings is not a TeamViewer user role; tvsync never creates roles; its mappings are skipped`,
    },
  };
}

/** The roles whose assignments the plan needs: those the mappings name that exist, and those holding assignments tvsync made. */
export function rolesToRead(mappings: readonly RoleMapping[], roles: readonly RoleRef[], made: readonly MadeRoleAssignment[]): RoleRef[] {
  const out = new Map<string, RoleRef>();
  for (const mapping of mappings) {
    const match = resolveRole(roles, mapping.role);
    if ('role' in match) out.set(match.role.id, match.role);
  }
  for (const record of made) {
    const role = roles.find((r) => r.id === record.roleId);
    if (role) out.set(role.id, role);
  }
  return [...out.values()].sort((a, b) => compare(a.id, b.id));
}

/**
 * The read guard for role removals: the group phase's when it ran (it already includes the users'),
 * else the same guard over the stored read, with the users' block. One rule, not a second one.
 */
export function roleRemovalGuard(opts: {
  groupRemovalsBlocked?: RemovalBlock | undefined;
  groupsSynced: boolean;
  usersBlocked?: RemovalBlock | undefined;
  read: ReadFacts;
  groupLinks: number;
}): RemovalBlock | undefined {
  if (opts.groupsSynced) return opts.groupRemovalsBlocked;
  return guardGroupRemovals(opts.read, {
    ...(opts.usersBlocked ? { usersBlocked: opts.usersBlocked } : {}),
    groupLinks: opts.groupLinks,
    // Not read this cycle: not taken for empty.
    teamviewerGroups: opts.groupLinks,
  });
}

interface Desired {
  role: RoleRef;
  /** TeamViewer group id → IdP group id. */
  groups: Map<string, string>;
  /** TeamViewer user id → IdP group id. */
  accounts: Map<string, string>;
}

/** Computes the role assignments to add and take away. Same input, same plan, in the same order. */
export function computeRolePlan(input: RolePlanInput): RolePlan {
  const batchSize = Number.isInteger(input.batchSize) && (input.batchSize ?? 0) > 0 ? (input.batchSize as number) : DEFAULT_BATCH;
  const skipped: RoleSkippedItem[] = [];
  const notices: string[] = [];
  const desired = new Map<string, Desired>();
  const groupsById = new Map(input.groups.map((g) => [g.id, g]));
  const reportedRoles = new Set<string>();
  const tokenOwnerSkips = new Set<string>();

  for (const mapping of input.mappings) {
    const match = resolveRole(input.roles, mapping.role);
    if ('skip' in match) {
      // One line per role, however many mappings name it.
      if (!reportedRoles.has(mapping.role)) skipped.push(match.skip);
      reportedRoles.add(mapping.role);
      continue;
    }
    const { role } = match;
    const want = desired.get(role.id) ?? { role, groups: new Map(), accounts: new Map() };
    desired.set(role.id, want);
    let group = groupsById.get(mapping.idpGroup);
    if (!group) {
      const named = input.groups.filter((g) => g.name === mapping.idpGroup);
      if (named.length > 1) {
        skipped.push({
          reason: 'idp-group-ambiguous',
          role: role.name,
          message: `IdP group ${clip(mapping.idpGroup)} (roles.mappings) matches ${named.length} IdP groups by name; name it by id; role ${clip(role.name)} is not given through it`,
        });
        continue;
      }
      group = named[0];
    }
    if (!group) {
      skipped.push({
        reason: 'idp-group-not-found',
        role: role.name,
        message: `IdP group ${clip(mapping.idpGroup)} (roles.mappings) is not in the IdP read; role ${clip(role.name)} is not given through it`,
      });
      continue;
    }
    if (mapping.assign === 'usergroup') {
      if (!input.groupsSynced) {
        skipped.push({
          reason: 'group-not-synced',
          role: role.name,
          sourceGroupId: group.id,
          message: `role ${clip(role.name)} for group ${clip(group.name)}: the TeamViewer user groups were not synced this cycle (groups off or unavailable), so no user group is assigned or unassigned`,
        });
        continue;
      }
      const tvGroupId = input.groupLinks.get(group.id);
      if (tvGroupId === undefined) {
        skipped.push({
          reason: 'group-not-in-teamviewer',
          role: role.name,
          sourceGroupId: group.id,
          message: `role ${clip(role.name)} for group ${clip(group.name)}: the group has no TeamViewer user group yet (see the group report)`,
        });
        continue;
      }
      // A role given to a user group reaches every member: with the token's owner among them (or
      // the owner unknown), tvsync would be changing the owner's own role.
      const ownerInside = input.tokenOwnerTvUserId === undefined || group.memberIds.some((id) => input.userLinks.get(id) === input.tokenOwnerTvUserId);
      if (ownerInside) {
        skipped.push({
          reason: 'token-owner',
          role: role.name,
          sourceGroupId: group.id,
          message:
            input.tokenOwnerTvUserId === undefined
              ? `role ${clip(role.name)} for group ${clip(group.name)}: the owner of the TeamViewer token is unknown (set target.tokenOwner), so no role is given that could reach it`
              : `role ${clip(role.name)} for group ${clip(group.name)}: the owner of the TeamViewer token is a member, and tvsync never changes its role; not assigned`,
        });
        continue;
      }
      if (!want.groups.has(tvGroupId)) want.groups.set(tvGroupId, group.id);
      continue;
    }
    if (input.tokenOwnerTvUserId === undefined) {
      skipped.push({
        reason: 'token-owner',
        role: role.name,
        sourceGroupId: group.id,
        message: `role ${clip(role.name)} for the members of ${clip(group.name)}: the owner of the TeamViewer token is unknown (set target.tokenOwner), so no account role is given that could be the owner's`,
      });
      continue;
    }
    let missing = 0;
    for (const userId of group.memberIds) {
      const tvUserId = input.userLinks.get(userId);
      if (tvUserId === undefined) {
        missing++;
        continue;
      }
      if (tvUserId === input.tokenOwnerTvUserId) {
        const k = `${role.id}\u0000${tvUserId}`;
        if (!tokenOwnerSkips.has(k))
          skipped.push({
            reason: 'token-owner',
            role: role.name,
            sourceGroupId: group.id,
            tvUserId,
            message: `${tvUserId} owns the TeamViewer token: tvsync never changes its role (${clip(role.name)} not assigned)`,
          });
        tokenOwnerSkips.add(k);
        continue;
      }
      if (!want.accounts.has(tvUserId)) want.accounts.set(tvUserId, group.id);
    }
    if (missing > 0) {
      skipped.push({
        reason: 'member-not-provisioned',
        role: role.name,
        sourceGroupId: group.id,
        message: `${missing} member(s) of group ${clip(group.name)} have no TeamViewer user yet; role ${clip(role.name)} waits for them`,
      });
    }
  }

  const made = new Set(input.made.map(madeKey));
  const roleById = new Map(input.roles.map((r) => [r.id, r]));
  const touched = new Map<string, RoleRef>();
  for (const want of desired.values()) touched.set(want.role.id, want.role);
  const forget: MadeRoleAssignment[] = [];
  for (const record of input.made) {
    const role = roleById.get(record.roleId);
    if (role) touched.set(role.id, role);
    // The role is gone from TeamViewer: so are its assignments. A list with no role at all is
    // doubted instead (TeamViewer always has its predefined roles): the records stay.
    else if (input.roles.length > 0) forget.push(record);
  }

  const operations: RoleOperation[] = [];
  const removals: RoleOperation[] = [];
  let unchanged = 0;
  const assigned = { groups: 0, accounts: 0 };
  let removalCount = 0;
  const removalCounts = { groups: 0, accounts: 0 };
  for (const role of [...touched.values()].sort((a, b) => compare(a.id, b.id))) {
    const want = desired.get(role.id);
    const current = input.current.get(role.id) ?? { groups: new Set<string>(), accounts: new Set<string>() };
    // Adds.
    for (const [tvGroupId, sourceGroupId] of [...(want?.groups ?? [])].sort((a, b) => compare(a[0], b[0]))) {
      if (current.groups.has(tvGroupId)) {
        unchanged++;
        continue;
      }
      assigned.groups++;
      operations.push({
        kind: 'assignRole',
        key: `assignRole.${role.id}.usergroup.${tvGroupId}`,
        roleId: role.id,
        roleName: role.name,
        target: 'usergroup',
        tvGroupId,
        sourceGroupId,
        message: `assign role ${clip(role.name)} to user group ${tvGroupId} (IdP group ${clip(sourceGroupId)})`,
      });
    }
    const addAccounts = [...(want?.accounts.keys() ?? [])].filter((id) => !current.accounts.has(id)).sort();
    unchanged += (want?.accounts.size ?? 0) - addAccounts.length;
    assigned.accounts += addAccounts.length;
    operations.push(...accountBatches(input, 'assignRole', role, addAccounts, batchSize));

    // Removals: only what tvsync made, not wanted, and still there.
    const dropGroups: string[] = [];
    for (const tvGroupId of [...current.groups].sort()) {
      if (want?.groups.has(tvGroupId) || !made.has(madeKey({ roleId: role.id, target: 'usergroup', id: tvGroupId }))) continue;
      // Without the group phase, which user groups the mappings want is not known.
      if (!input.groupsSynced) continue;
      dropGroups.push(tvGroupId);
    }
    const dropAccounts: string[] = [];
    for (const tvUserId of [...current.accounts].sort()) {
      if (want?.accounts.has(tvUserId) || !made.has(madeKey({ roleId: role.id, target: 'account', id: tvUserId }))) continue;
      if (tvUserId === input.tokenOwnerTvUserId || input.protectedTvUserIds.has(tvUserId)) {
        const owner = tvUserId === input.tokenOwnerTvUserId;
        skipped.push({
          reason: owner ? 'token-owner' : 'protected',
          role: role.name,
          tvUserId,
          message: `${tvUserId} ${owner ? 'owns the TeamViewer token' : 'is on the protect list'}: role ${clip(role.name)} is not taken away`,
        });
        continue;
      }
      dropAccounts.push(tvUserId);
    }
    for (const tvGroupId of dropGroups) {
      removals.push({
        kind: 'unassignRole',
        key: `unassignRole.${role.id}.usergroup.${tvGroupId}`,
        roleId: role.id,
        roleName: role.name,
        target: 'usergroup',
        tvGroupId,
        message: `unassign role ${clip(role.name)} from user group ${tvGroupId} (no mapping asks for it any more)`,
      });
    }
    removals.push(...accountBatches(input, 'unassignRole', role, dropAccounts, batchSize));
    removalCount += dropGroups.length + dropAccounts.length;
    removalCounts.groups += dropGroups.length;
    removalCounts.accounts += dropAccounts.length;

    // Records of assignments TeamViewer no longer has are forgotten unless still wanted (then re-made and re-recorded).
    for (const record of input.made) {
      if (record.roleId !== role.id) continue;
      const there = record.target === 'usergroup' ? current.groups.has(record.id) : current.accounts.has(record.id);
      const wanted = record.target === 'usergroup' ? want?.groups.has(record.id) : want?.accounts.has(record.id);
      if (!there && !wanted) forget.push(record);
    }
  }

  const { removalsBlocked } = input;
  let held: RoleOperation[] = [];
  const unassigned = { groups: 0, accounts: 0 };
  if (removalCount > 0 && removalsBlocked) {
    skipped.push({
      reason: 'source-read-incomplete',
      message: `${removalCount} role assignment(s) would be taken away; not done because ${removalsBlocked.cause}`,
    });
    notices.push(`No role is taken away this cycle: ${removalsBlocked.cause} (${removalCount} role assignment(s) kept).`);
  } else if (removalCount > 0 && exceedsThreshold(input.threshold, removalCount, input.made.length)) {
    held = removals;
    notices.push(
      `${removalCount} role assignment(s) would be taken away${shareOf(removalCount, input.made.length, 'role assignments')}, more than policy.memberRemovalThreshold allows: none is taken away this cycle; raise the threshold or check the IdP groups and mappings.`,
    );
  } else {
    operations.push(...removals);
    unassigned.groups = removalCounts.groups;
    unassigned.accounts = removalCounts.accounts;
  }

  const skippedCounts: Partial<Record<RoleSkipReason, number>> = {};
  for (const item of skipped) skippedCounts[item.reason] = (skippedCounts[item.reason] ?? 0) + 1;
  const plan: RolePlan = {
    operations,
    held,
    skipped,
    forget,
    notices,
    summary: { mappings: input.mappings.length, roles: touched.size, assigned, unassigned, held: held.length, unchanged, skipped: skippedCounts },
  };
  if (removalsBlocked && removalCount > 0) plan.removalsBlocked = removalsBlocked;
  return plan;
}

function accountBatches(input: RolePlanInput, kind: RoleOperationKind, role: RoleRef, userIds: string[], batchSize: number): RoleOperation[] {
  const out: RoleOperation[] = [];
  const count = Math.ceil(userIds.length / batchSize);
  const sourceOf = new Map<string, string>();
  for (const [sourceId, tvId] of input.userLinks) if (!sourceOf.has(tvId) || compare(sourceId, sourceOf.get(tvId) ?? '') < 0) sourceOf.set(tvId, sourceId);
  for (let batch = 0; batch < count; batch++) {
    const slice = userIds.slice(batch * batchSize, (batch + 1) * batchSize);
    const of = count > 1 ? ` (batch ${batch + 1} of ${count})` : '';
    const verb = kind === 'assignRole' ? `assign role ${clip(role.name)} to` : `unassign role ${clip(role.name)} from`;
    out.push({
      kind,
      key: `${kind}.${role.id}.accounts.${batch}`,
      roleId: role.id,
      roleName: role.name,
      target: 'accounts',
      userIds: slice,
      members: slice.map((tvUserId) => {
        const member: GroupMember = { tvUserId };
        const sourceId = sourceOf.get(tvUserId);
        if (sourceId !== undefined) member.sourceId = sourceId;
        const email = sourceId === undefined ? undefined : input.userEmails?.get(sourceId);
        if (email !== undefined) member.email = email;
        return member;
      }),
      message: `${verb} ${slice.length} account(s)${of}`,
    });
  }
  return out;
}

export function madeKey(record: MadeRoleAssignment): string {
  return `${record.roleId}|${record.target}|${record.id}`;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
