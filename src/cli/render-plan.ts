import type { Plan } from '../plan/types.js';
import type { GroupPhase } from '../plan/group-types.js';
import type { RolePhase } from '../plan/roles.js';
import type { WriteCheck } from '../plan/drift.js';

/** Earlier writes not kept and hand-made changes the plan found: each is written again or set back by the operations. */
function writeCheckLines(check: WriteCheck | undefined): string[] {
  if (!check) return [];
  const lines: string[] = [];
  if (check.notKept.length) lines.push('', 'writes not kept (written again):', ...check.notKept.map((i) => `  ${i.kind.padEnd(20)} ${i.message}`));
  if (check.drift.length) lines.push('', 'drift, changed by hand in TeamViewer (set back):', ...check.drift.map((i) => `  ${i.kind.padEnd(20)} ${i.message}`));
  return lines;
}

const VERB = { createUser: 'create', updateUser: 'update', deactivateUser: 'deactivate', reactivateUser: 'reactivate' } as const;

/** The human form of a plan: counts first, then one line per operation and per skipped item. */
export function renderPlan(syncName: string, plan: Plan): string {
  const s = plan.summary;
  const skipped = Object.values(s.skipped).reduce((a, b) => a + (b ?? 0), 0);
  const lines = [
    `sync ${syncName}: ${s.inScope} users in the IdP scope, ${s.teamviewerUsers} in TeamViewer, ${s.managed} managed by this sync`,
    `  create ${s.operations.createUser} · update ${s.operations.updateUser} · reactivate ${s.operations.reactivateUser} · deactivate ${s.operations.deactivateUser} · held ${s.held} · unchanged ${s.unchanged} · skipped ${skipped}`,
  ];
  if (plan.notices.length) lines.push('', 'notices:', ...plan.notices.map((n) => `  ! ${n}`));
  lines.push(...writeCheckLines(plan.writeCheck));
  if (plan.operations.length) lines.push('', 'operations:', ...plan.operations.map((op) => `  ${VERB[op.kind].padEnd(10)} ${op.message}`));
  if (plan.held.length) lines.push('', 'held for approval (deactivation threshold):', ...plan.held.map((op) => `  ${'held'.padEnd(10)} ${op.message}`));
  if (plan.skipped.length) lines.push('', 'skipped:', ...plan.skipped.map((item) => `  ${item.reason.padEnd(28)} ${item.message}`));
  if (plan.links.length) {
    const set = plan.links.filter((l) => l.action === 'set').length;
    lines.push('', `links: ${set} learned by e-mail match, ${plan.links.length - set} dropped`);
  }
  return lines.join('\n');
}

const GROUP_VERB = { createGroup: 'create', renameGroup: 'rename', addGroupMembers: 'add', removeGroupMembers: 'remove', deleteGroup: 'delete' } as const;

/** The group phase of a plan, in the same form as the users'. */
export function renderGroupPhase(phase: GroupPhase): string {
  if (phase.status !== 'synced') return `groups: ${phase.status}: ${phase.detail}`;
  const { plan } = phase;
  const s = plan.summary;
  const ops = s.operations;
  const skipped = Object.values(s.skipped).reduce((a, b) => a + (b ?? 0), 0);
  const lines = [
    `groups: ${s.inScope} in the IdP scope, ${s.teamviewerGroups} in TeamViewer, ${s.managed} managed by this sync`,
    `  create ${ops.createGroup} · rename ${ops.renameGroup} · member adds ${ops.addGroupMembers} (+${s.membersAdded}) · member removals ${ops.removeGroupMembers} (-${s.membersRemoved}) · delete ${ops.deleteGroup} · held ${s.held}${s.memberRemovalsHeld ? ` (+${s.memberRemovalsHeld} member removals)` : ''} · unchanged ${s.unchanged} · skipped ${skipped}`,
  ];
  if (plan.notices.length) lines.push(...plan.notices.map((n) => `  ! ${n}`));
  lines.push(...writeCheckLines(plan.writeCheck));
  if (plan.operations.length) lines.push('', 'group operations:', ...plan.operations.map((op) => `  ${GROUP_VERB[op.kind].padEnd(10)} ${op.message}`));
  if (plan.held.length) lines.push('', 'group deletions held for approval:', ...plan.held.map((op) => `  ${'held'.padEnd(10)} ${op.message}`));
  const heldRemovals = plan.heldMemberRemovals ?? [];
  if (heldRemovals.length)
    lines.push('', 'member removals held for approval (member-removal threshold):', ...heldRemovals.map((h) => `  ${'held'.padEnd(10)} ${h.message}`));
  if (plan.skipped.length) lines.push('', 'groups skipped:', ...plan.skipped.map((item) => `  ${item.reason.padEnd(28)} ${item.message}`));
  return lines.join('\n');
}

/** The role phase of a plan: what would be assigned and taken away, held, blocked or skipped. */
export function renderRolePhase(phase: RolePhase): string {
  if (phase.status !== 'synced') return `roles: ${phase.status}: ${phase.detail}`;
  const { plan } = phase;
  const s = plan.summary;
  const skipped = Object.values(s.skipped).reduce((a, b) => a + (b ?? 0), 0);
  const lines = [
    `roles: ${s.mappings} mapping(s), ${s.roles} role(s) concerned`,
    `  assign +${s.assigned.groups} group(s) +${s.assigned.accounts} account(s) · unassign -${s.unassigned.groups} group(s) -${s.unassigned.accounts} account(s) · held ${s.held} · unchanged ${s.unchanged} · skipped ${skipped}`,
  ];
  if (plan.notices.length) lines.push(...plan.notices.map((n) => `  ! ${n}`));
  if (plan.operations.length)
    lines.push('', 'role operations:', ...plan.operations.map((op) => `  ${(op.kind === 'assignRole' ? 'assign' : 'unassign').padEnd(10)} ${op.message}`));
  if (plan.held.length) lines.push('', 'role removals held (member-removal threshold):', ...plan.held.map((op) => `  ${'held'.padEnd(10)} ${op.message}`));
  if (plan.skipped.length) lines.push('', 'roles skipped:', ...plan.skipped.map((item) => `  ${item.reason.padEnd(28)} ${item.message}`));
  return lines.join('\n');
}
