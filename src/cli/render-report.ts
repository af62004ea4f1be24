import { OPERATION_KINDS, type CycleReport, type OperationKind } from '../plan/report.js';

const VERB: Record<OperationKind, string> = {
  createUser: 'created',
  updateUser: 'updated',
  reactivateUser: 'reactivated',
  deactivateUser: 'deactivated',
  createGroup: 'groups created',
  renameGroup: 'groups renamed',
  addGroupMembers: 'member adds',
  removeGroupMembers: 'member removals',
  deleteGroup: 'groups deleted',
};

/** The human form of a report; `maxItems` caps each list (failures, skipped) for overviews. */
export function renderReport(report: CycleReport, opts: { maxItems?: number } = {}): string {
  const lines = [
    `cycle ${report.cycleId} of sync ${report.sync} (${report.trigger}): ${report.outcome.toUpperCase()} in ${(report.durationMs / 1000).toFixed(1)} s`,
  ];
  if (report.failure) lines.push(`  failure (${report.failure.failureClass}): ${report.failure.message}`);
  const counts = OPERATION_KINDS.filter((k) => (!k.endsWith('Group') && !k.endsWith('Members')) || report.operations[k].planned > 0).map((k) => {
    const c = report.operations[k];
    return `${VERB[k]} ${c.applied}/${c.planned}${c.failed ? ` (${c.failed} failed)` : ''}${c.cancelled ? ` (${c.cancelled} cancelled)` : ''}`;
  });
  lines.push(`  ${counts.join(' · ')}${report.adopted ? ` · adopted ${report.adopted}` : ''}`);
  if (report.summary)
    lines.push(
      `  in scope ${report.summary.inScope} · TeamViewer ${report.summary.teamviewerUsers} · managed ${report.summary.managed} · unchanged ${report.summary.unchanged}`,
    );
  if (report.groups) {
    const g = report.groups.summary;
    lines.push(
      `  groups: ${report.groups.status}${report.groups.detail ? ` (${report.groups.detail})` : ''}${g ? ` · in scope ${g.inScope} · managed ${g.managed} · unchanged ${g.unchanged} · members +${g.membersAdded} -${g.membersRemoved}` : ''}`,
    );
  }
  const heldGroups = report.groups?.held.count ?? 0;
  const heldRemovals = report.groups?.heldMemberRemovals;
  if (report.held.count || heldGroups || heldRemovals) {
    const removals = heldRemovals ? `, ${heldRemovals.count} member removals in ${heldRemovals.groups} group(s)` : '';
    lines.push(
      `  held for approval: ${report.held.count} deactivations, ${heldGroups} group deletions${removals} (tvsync approve --sync ${report.sync} --cycle ${report.cycleId})`,
    );
  }
  if (report.recycled?.count)
    lines.push(
      `  held for approval: ${report.recycled.count} recycled addresses, neither reactivated nor linked (tvsync approve --sync ${report.sync} --cycle ${report.cycleId})`,
    );
  for (const notice of report.notices) lines.push(`  ! ${notice}`);
  const list = (items: string[], what: string) => {
    const max = opts.maxItems ?? items.length;
    lines.push(...items.slice(0, max));
    if (items.length > max) lines.push(`  … ${items.length - max} more ${what} (tvsync log --sync ${report.sync} --cycle ${report.cycleId})`);
  };
  list(
    report.failures.map((f) => `  failed   ${f.failureClass ?? ''} ${f.message}`),
    'failures',
  );
  list(
    [...report.skipped, ...(report.groups?.skipped ?? [])].map((s) => `  skipped  ${s.reason}: ${s.message}`),
    'skipped',
  );
  return lines.join('\n');
}
