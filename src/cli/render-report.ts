import { OPERATION_KINDS, OPERATION_VERBS, type CycleReport } from '../plan/report.js';

/** The human form of a report; `maxItems` caps each list (failures, skipped) for overviews. */
export function renderReport(report: CycleReport, opts: { maxItems?: number } = {}): string {
  const lines = [
    `cycle ${report.cycleId} of sync ${report.sync} (${report.trigger}): ${report.outcome.toUpperCase()} in ${(report.durationMs / 1000).toFixed(1)} s`,
  ];
  if (report.failure) lines.push(`  failure (${report.failure.failureClass}): ${report.failure.message}`);
  const counts = OPERATION_KINDS.filter((k) => (!k.endsWith('Group') && !k.endsWith('Members') && !k.endsWith('Role')) || report.operations[k].planned > 0).map(
    (k) => {
      const c = report.operations[k];
      return `${OPERATION_VERBS[k]} ${c.applied}/${c.planned}${c.failed ? ` (${c.failed} failed)` : ''}${c.cancelled ? ` (${c.cancelled} cancelled)` : ''}`;
    },
  );
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
  if (report.roles) {
    const r = report.roles.summary;
    lines.push(
      `  roles: ${report.roles.status}${report.roles.detail ? ` (${report.roles.detail})` : ''}${r ? ` · roles ${r.roles} · assigned +${r.assigned.groups} group(s) +${r.assigned.accounts} account(s) · unassigned -${r.unassigned.groups} group(s) -${r.unassigned.accounts} account(s) · held ${r.held} · unchanged ${r.unchanged}` : ''}`,
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
  if (report.seats) {
    const { used, total, free, waiting } = report.seats;
    lines.push(`  seats: ${used} of ${total} used, ${free} free${waiting ? `; ${waiting} creates wait for a free seat` : ''}`);
  }
  if (report.sso?.status === 'checked') {
    const counts = Object.entries(report.sso.notActive).map(([status, n]) => `${status} ${n}`);
    const glass = report.sso.breakGlass;
    const parts = counts.length ? [`SSO not active: ${counts.join(' · ')}`] : glass ? [] : ['SSO: every active user is Active'];
    if (glass && !glass.detail) parts.push(`SSO break-glass: ${glass.added.length} added, ${glass.present.length} in place`);
    if (parts.length) lines.push(`  ${parts.join(' · ')}`);
  }
  if (report.recycled?.count)
    lines.push(
      `  held for approval: ${report.recycled.count} recycled addresses, neither reactivated nor linked (tvsync approve --sync ${report.sync} --cycle ${report.cycleId})`,
    );
  for (const notice of report.notices) lines.push(`  ! ${notice}`);
  const kinds = (byKind: Partial<Record<string, number>>) =>
    Object.entries(byKind)
      .map(([kind, n]) => `${kind} ${n}`)
      .join(', ');
  if (report.writesNotKept) lines.push(`  writes not kept: ${report.writesNotKept.count} (${kinds(report.writesNotKept.byKind)}), written again`);
  if (report.drift) lines.push(`  drift: ${report.drift.count} changed by hand in TeamViewer (${kinds(report.drift.byKind)}), set back`);
  const list = (items: string[], what: string) => {
    const max = opts.maxItems ?? items.length;
    lines.push(...items.slice(0, max));
    if (items.length > max) lines.push(`  … ${items.length - max} more ${what} (tvsync log --sync ${report.sync} --cycle ${report.cycleId})`);
  };
  list(
    (report.writesNotKept?.items ?? []).map((i) => `  not kept ${i.kind}: ${i.message}`),
    'writes not kept',
  );
  list(
    (report.drift?.items ?? []).map((i) => `  drift    ${i.kind}: ${i.message}`),
    'drift',
  );
  list(
    report.failures.map((f) => `  failed   ${f.failureClass ?? ''} ${f.message}`),
    'failures',
  );
  list(
    [...report.skipped, ...(report.groups?.skipped ?? []), ...(report.roles?.skipped ?? [])].map((s) => `  skipped  ${s.reason}: ${s.message}`),
    'skipped',
  );
  return lines.join('\n');
}
