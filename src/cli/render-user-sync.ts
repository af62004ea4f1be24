import type { UserSyncReport } from '../plan/user-sync.js';
import type { SyncStatus } from '../runtime/status.js';

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

/** The fast lane in `tvsync status`: its feeds, what it held, and its last user syncs. */
export function renderFastLane(fastLane: SyncStatus['fastLane'], shown = 10): string {
  if (!fastLane.enabled) return 'fast lane: off (fastLane.enabled: false); changes wait for the next cycle';
  const lines: string[] = [];
  if (fastLane.feeds.length === 0) lines.push('fast lane: no change feed polled yet (the source may have none; hooks and sync-user still work)');
  for (const feed of fastLane.feeds) {
    const at = new Date(feed.lastPollAtMs).toISOString();
    lines.push(
      `fast lane: ${feed.feed} polled ${at}: ${feed.ok ? 'ok' : `FAILED (${feed.error ?? 'unknown'})`}${feed.lastHintAtMs ? `, last change seen ${new Date(feed.lastHintAtMs).toISOString()}` : ''}`,
    );
  }
  for (const held of fastLane.held) lines.push(`  HELD ${held.message} (since ${new Date(held.atMs).toISOString()}; tvsync approve releases it)`);
  for (const report of fastLane.userSyncs.slice(0, shown)) {
    const who = report.email ?? report.ref;
    const via = report.feed ?? report.trigger;
    const latency = report.latencyMs !== undefined ? `, ${Math.round(report.latencyMs / 100) / 10} s after the change` : '';
    lines.push(`  ${report.finishedAt} ${who} via ${via}: ${report.outcome}${latency}: ${report.steps.at(-1)?.detail ?? ''}`);
  }
  return lines.join('\n');
}
