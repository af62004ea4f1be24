import type { FailureClass } from '../model/failure.js';
import type { GroupMember, GroupOperationKind, GroupPhase, GroupPlanSummary, GroupSkippedItem, HeldMemberRemoval } from './group-types.js';
import type { RemovalBlock } from './guards.js';
import type { RoleOperationKind, RolePhase, RolePlanSummary, RoleSkippedItem } from './roles.js';
import type { ChangeUserOperation, Plan, PlanSummary, SkippedItem, UserOperation, UserOperationKind } from './types.js';
import { countByKind, type DriftKind, type NotKeptKind, type WriteCheckItem } from './drift.js';

export type OperationKind = UserOperationKind | GroupOperationKind | RoleOperationKind;
export const OPERATION_KINDS: readonly OperationKind[] = [
  'createUser',
  'updateUser',
  'reactivateUser',
  'deactivateUser',
  'createGroup',
  'renameGroup',
  'addGroupMembers',
  'removeGroupMembers',
  'deleteGroup',
  'assignRole',
  'unassignRole',
];

/** How a report's counts name each kind of operation ("3 created"), in the CLI and on the status page. */
export const OPERATION_VERBS: Readonly<Record<OperationKind, string>> = {
  createUser: 'created',
  updateUser: 'updated',
  reactivateUser: 'reactivated',
  deactivateUser: 'deactivated',
  createGroup: 'groups created',
  renameGroup: 'groups renamed',
  addGroupMembers: 'member adds',
  removeGroupMembers: 'member removals',
  deleteGroup: 'groups deleted',
  assignRole: 'role assigns',
  unassignRole: 'role unassigns',
};

/** What happened to one operation, as the operation worker records it. */
export interface OperationResult {
  key: string;
  kind: OperationKind;
  /** The IdP user or group id. */
  sourceId: string;
  /** The user's address (user operations). */
  email?: string;
  /** The group's name (group operations). */
  group?: string;
  /** The IdP and TeamViewer group ids (group operations; the TeamViewer id once the group exists). */
  sourceGroupId?: string;
  tvGroupId?: string;
  /** Whom a membership operation added or removed, or meant to (a create that adopted a group: only those it added). */
  members?: GroupMember[];
  /** The user role (role operations). */
  role?: string;
  roleId?: string;
  /** TeamViewer's values before the write (absent for a create). */
  before?: { displayName: string; active?: boolean };
  /** The values written. */
  after: { displayName?: string; active?: boolean };
  status: 'applied' | 'failed' | 'cancelled';
  /** The TeamViewer user (user operations). */
  tvUserId?: string;
  adopted?: boolean;
  failureClass?: FailureClass;
  message: string;
  attempts: number;
}

export type CycleOutcome = 'succeeded' | 'partial' | 'failed';

export interface CycleReport {
  sync: string;
  cycleId: string;
  trigger: string;
  /** When the manual request behind this cycle was made (epoch ms), if any. */
  requestedAt?: number;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  outcome: CycleOutcome;
  /** Why the cycle as a whole failed (IdP read, 401, TeamViewer unreachable). */
  failure?: { failureClass: FailureClass | 'source-read' | 'internal'; message: string };
  notices: string[];
  summary?: PlanSummary;
  /** The group phase: absent when group sync is off; `unavailable` when the tenant has no /Groups. */
  groups?: {
    status: 'synced' | 'unavailable' | 'skipped' | 'failed';
    detail?: string;
    summary?: GroupPlanSummary;
    skipped: GroupSkippedItem[];
    /** Group deletions held for approval. */
    held: { count: number; items: { tvGroupId: string; displayName: string; message: string }[] };
    /** Member removals held for approval: `count` members in `groups` groups, approved per group. */
    heldMemberRemovals?: { count: number; groups: number; items: Pick<HeldMemberRemoval, 'tvGroupId' | 'displayName' | 'members' | 'message'>[] };
    /** Why no group was deleted and no member removed this cycle (the read guard). */
    removalsBlocked?: Pick<RemovalBlock, 'reason' | 'message'>;
  };
  /** The role phase: absent when roles are off; `unavailable` (one line) when the token lacks the user-role permission. */
  roles?: {
    status: RolePhase['status'];
    detail?: string;
    summary?: RolePlanSummary;
    skipped: RoleSkippedItem[];
    /** Role removals held at the threshold. */
    held: { count: number; items: { roleName: string; message: string }[] };
    removalsBlocked?: Pick<RemovalBlock, 'reason' | 'message'>;
  };
  operations: Record<OperationKind, { planned: number; applied: number; failed: number; cancelled: number }>;
  adopted: number;
  failures: OperationResult[];
  skipped: SkippedItem[];
  held: { count: number; pendingApproval: boolean; items: Pick<ChangeUserOperation, 'tvUserId' | 'email' | 'reason' | 'message'>[] };
  deactivationsBlocked?: Plan['deactivationsBlocked'];
  /** Writes TeamViewer answered with success but did not keep (the plan wrote them again); absent when none. */
  writesNotKept?: WriteCheckSection<NotKeptKind>;
  /** Users and groups changed by hand in TeamViewer against what tvsync left (the plan set them back); absent when none. */
  drift?: WriteCheckSection<DriftKind>;
  /** Seats of the licence at planning time, and creates waiting for one (seats.enabled). */
  seats?: Plan['seats'];
  /** Users not signing in through SSO, per status, and the break-glass addresses (sso.report, sso.breakGlass). */
  sso?: Plan['sso'];
  /** New IdP users held because their address matched another person's deactivated TeamViewer user (approved by TeamViewer user id). */
  recycled?: { count: number; items: Pick<SkippedItem, 'sourceId' | 'email' | 'tvUserId' | 'message'>[] };
}

/** `count` objects or members, per kind; items capped at REPORT_LIST_CAP. */
export interface WriteCheckSection<K extends string> {
  count: number;
  byKind: Partial<Record<K, number>>;
  items: WriteCheckItem<K>[];
}

function writeCheckSection<K extends string>(items: readonly WriteCheckItem<K>[]): WriteCheckSection<K> | undefined {
  if (items.length === 0) return undefined;
  return { count: items.reduce((n, i) => n + i.count, 0), byKind: countByKind(items), items: items.slice(0, REPORT_LIST_CAP) };
}

/** Lists in a stored report are capped so a 100k-user disaster does not make a 100 MB report. */
export const REPORT_LIST_CAP = 1000;

export function operationKey(op: UserOperation): string {
  return `${op.kind}.${op.kind === 'createUser' ? op.sourceId : op.tvUserId}`;
}

function emptyCounts(): CycleReport['operations'] {
  const zero = () => ({ planned: 0, applied: 0, failed: 0, cancelled: 0 });
  return Object.fromEntries(OPERATION_KINDS.map((k) => [k, zero()])) as CycleReport['operations'];
}

/** Pure: the report of a cycle from its plan and the recorded outcomes. */
export function buildReport(input: {
  sync: string;
  cycleId: string;
  trigger: string;
  requestedAt?: number;
  startedAtMs: number;
  finishedAtMs: number;
  plan?: Plan;
  groups?: GroupPhase;
  roles?: RolePhase;
  results: readonly OperationResult[];
  failure?: CycleReport['failure'];
}): CycleReport {
  const operations = emptyCounts();
  const { plan } = input;
  const groupPlan = input.groups?.status === 'synced' ? input.groups.plan : undefined;
  for (const op of plan?.operations ?? []) operations[op.kind].planned++;
  for (const op of groupPlan?.operations ?? []) operations[op.kind].planned++;
  const rolePlan = input.roles?.status === 'synced' ? input.roles.plan : undefined;
  for (const op of rolePlan?.operations ?? []) operations[op.kind].planned++;
  let adopted = 0;
  const failures: OperationResult[] = [];
  for (const result of input.results) {
    operations[result.kind][result.status]++;
    if (result.adopted) adopted++;
    if (result.status === 'failed') failures.push(result);
  }
  failures.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const anyFailed = failures.length > 0;
  const outcome: CycleOutcome = input.failure
    ? 'failed'
    : anyFailed || input.groups?.status === 'failed' || input.roles?.status === 'failed'
      ? 'partial'
      : 'succeeded';
  const report: CycleReport = {
    sync: input.sync,
    cycleId: input.cycleId,
    trigger: input.trigger,
    startedAt: new Date(input.startedAtMs).toISOString(),
    finishedAt: new Date(input.finishedAtMs).toISOString(),
    durationMs: input.finishedAtMs - input.startedAtMs,
    outcome,
    notices: plan?.notices ?? [],
    operations,
    adopted,
    // Who a failed membership change was about is in the provisioning log; a report stays small.
    failures: failures.slice(0, REPORT_LIST_CAP).map(({ members: _, ...failure }) => failure),
    skipped: (plan?.skipped ?? []).slice(0, REPORT_LIST_CAP),
    held: {
      count: plan?.held.length ?? 0,
      pendingApproval: (plan?.held.length ?? 0) > 0,
      items: (plan?.held ?? []).slice(0, REPORT_LIST_CAP).map(({ tvUserId, email, reason, message }) => ({ tvUserId, email, reason, message })),
    },
  };
  if (input.requestedAt !== undefined) report.requestedAt = input.requestedAt;
  if (plan) report.summary = plan.summary;
  if (input.failure) report.failure = input.failure;
  if (plan?.deactivationsBlocked) report.deactivationsBlocked = plan.deactivationsBlocked;
  if (plan?.seats) report.seats = plan.seats;
  if (plan?.sso) report.sso = plan.sso;
  const recycled = (plan?.skipped ?? []).filter((item) => item.reason === 'recycled-address');
  if (recycled.length) {
    report.recycled = {
      count: recycled.length,
      items: recycled.slice(0, REPORT_LIST_CAP).map(({ sourceId, email, tvUserId, message }) => ({ sourceId, email, tvUserId, message })),
    };
    report.held.pendingApproval = true;
  }
  if (input.groups) {
    report.groups = {
      status: input.groups.status,
      skipped: (groupPlan?.skipped ?? []).slice(0, REPORT_LIST_CAP),
      held: {
        count: groupPlan?.held.length ?? 0,
        items: (groupPlan?.held ?? []).slice(0, REPORT_LIST_CAP).map(({ tvGroupId, displayName, message }) => ({ tvGroupId, displayName, message })),
      },
    };
    if (input.groups.status !== 'synced' && input.groups.detail) report.groups.detail = input.groups.detail;
    if (groupPlan) {
      report.groups.summary = groupPlan.summary;
      report.notices = [...report.notices, ...groupPlan.notices];
      if (groupPlan.held.length) report.held.pendingApproval = true;
      // Absent in plans stored before member removals could be held.
      const heldRemovals = groupPlan.heldMemberRemovals ?? [];
      if (heldRemovals.length) {
        report.groups.heldMemberRemovals = {
          count: heldRemovals.reduce((n, h) => n + h.members, 0),
          groups: heldRemovals.length,
          items: heldRemovals.slice(0, REPORT_LIST_CAP).map(({ tvGroupId, displayName, members, message }) => ({ tvGroupId, displayName, members, message })),
        };
        report.held.pendingApproval = true;
      }
      if (groupPlan.removalsBlocked) report.groups.removalsBlocked = { reason: groupPlan.removalsBlocked.reason, message: groupPlan.removalsBlocked.message };
    }
  }
  if (input.roles) report.roles = roleReport(input.roles);
  if (rolePlan) report.notices = [...report.notices, ...rolePlan.notices];
  const notKept = writeCheckSection([...(plan?.writeCheck?.notKept ?? []), ...(groupPlan?.writeCheck?.notKept ?? [])]);
  const drift = writeCheckSection([...(plan?.writeCheck?.drift ?? []), ...(groupPlan?.writeCheck?.drift ?? [])]);
  if (notKept) report.writesNotKept = notKept;
  if (drift) report.drift = drift;
  if (
    failures.length > REPORT_LIST_CAP ||
    (plan?.skipped.length ?? 0) > REPORT_LIST_CAP ||
    (groupPlan?.skipped.length ?? 0) > REPORT_LIST_CAP ||
    (notKept?.items.length ?? 0) >= REPORT_LIST_CAP ||
    (drift?.items.length ?? 0) >= REPORT_LIST_CAP
  ) {
    report.notices = [...report.notices, `lists are cut at ${REPORT_LIST_CAP} entries; the provisioning log has every one`];
  }
  return report;
}

function roleReport(phase: RolePhase): NonNullable<CycleReport['roles']> {
  if (phase.status !== 'synced') return { status: phase.status, detail: phase.detail, skipped: [], held: { count: 0, items: [] } };
  const { plan } = phase;
  const roles: NonNullable<CycleReport['roles']> = {
    status: 'synced',
    summary: plan.summary,
    skipped: plan.skipped.slice(0, REPORT_LIST_CAP),
    held: { count: plan.held.length, items: plan.held.slice(0, REPORT_LIST_CAP).map(({ roleName, message }) => ({ roleName, message })) },
  };
  if (plan.removalsBlocked) roles.removalsBlocked = { reason: plan.removalsBlocked.reason, message: plan.removalsBlocked.message };
  return roles;
}
