import type { UserSyncReport } from '../plan/user-sync.js';

const STEP_TITLES: Record<UserSyncReport['steps'][number]['step'], string> = {
  idp: 'IdP',
  scope: 'Scope',
  mapping: 'Mapping',
  teamviewer: 'TeamViewer',
  link: 'Link',
  decision: 'Decision',
  groups: 'Groups',
};

/** The step report of one user sync, like an IdP's "provision on demand": each step, then what was done. */
export function renderUserSync(report: UserSyncReport): string {
  const lines: string[] = [];
  const who = report.email ? `${report.email}${report.sourceId ? ` (${report.sourceId})` : ''}` : report.ref;
  lines.push(`${report.dryRun ? 'Dry run: ' : ''}user sync of ${who} in sync ${report.sync}: ${report.outcome}`);
  for (const step of report.steps) lines.push(`  ${STEP_TITLES[step.step].padEnd(11)} ${step.detail}`);
  if (report.operations.length) {
    lines.push(report.dryRun ? '  Would do:' : '  Done:');
    for (const op of report.operations)
      lines.push(`    ${op.status === 'failed' ? 'FAILED ' : ''}${op.message}${op.failureClass ? ` [${op.failureClass}]` : ''}`);
  }
  for (const held of report.held) lines.push(`  Held:       ${held}`);
  for (const skipped of report.skipped) lines.push(`  Skipped:    ${skipped}`);
  if (report.failure) lines.push(`  Failure:    ${report.failure.message}`);
  return lines.join('\n');
}
