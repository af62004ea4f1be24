import type { SyncConfig, TvsyncConfig } from '../../config/schema.js';
import { createSource } from '../../connectors/index.js';
import type { Logger } from '../../observe/log.js';
import { createTeamViewerClient } from '../../runtime/wiring.js';
import type { ConnectionCheck } from '../../connectors/source.js';
import { MemoryStateStore } from '../../store/memory-state.js';
import { WARNING, checkTeamViewerConnection } from '../../teamviewer/connection-check.js';
import { checkWebApiAccess } from '../../teamviewer/web-api-check.js';
import { load, selectSyncs } from '../context.js';
import { EXIT } from '../exit.js';

/**
 * `tvsync validate`: like an IdP's "Test connection" button, for both ends of every sync. It only
 * reads (a page of users, the token owner, one group lookup), so it is safe against production.
 */

export interface SyncValidation {
  sync: string;
  ok: boolean;
  source: ConnectionCheck;
  teamviewer: ConnectionCheck;
}

/** Checks each sync's source and TeamViewer side; never throws for a failed check. An empty list means every sync. */
export async function validateSyncs(config: TvsyncConfig, syncs: SyncConfig[], deps: { log: Logger }): Promise<SyncValidation[]> {
  const selected = syncs.length > 0 ? syncs : config.syncs;
  return Promise.all(
    selected.map(async (sync) => {
      const log = deps.log.child({ sync: sync.name });
      const [source, teamviewer] = await Promise.all([checkSource(sync, log), checkTeamViewer(sync)]);
      log.debug({ source: source.ok, teamviewer: teamviewer.ok }, 'validated');
      return { sync: sync.name, ok: source.ok && teamviewer.ok, source, teamviewer };
    }),
  );
}

async function checkSource(sync: SyncConfig, log: Logger): Promise<ConnectionCheck> {
  try {
    // In-memory state: a check must leave the daemon's delta links and snapshots alone.
    return await createSource(sync.source, { state: new MemoryStateStore(), log }).check();
  } catch (err) {
    // Connectors report failures as checks; this is for one that cannot even be set up.
    return {
      ok: false,
      checks: [{ name: `${sync.source.type} source`, ok: false, detail: `could not be checked: ${err instanceof Error ? err.message : String(err)}` }],
    };
  }
}

async function checkTeamViewer(sync: SyncConfig): Promise<ConnectionCheck> {
  const target = { baseUrl: sync.target.baseUrl, tokenOwner: sync.target.tokenOwner, groups: sync.groups.enabled };
  const client = createTeamViewerClient(sync.target);
  const check = await checkTeamViewerConnection(client, target);
  // A refused token or no answer would only repeat itself in the Web API reads.
  if (!check.checks[0]?.ok) return check;
  const features = { seats: sync.seats.enabled, ssoReport: sync.sso.report, breakGlass: sync.sso.breakGlass.length > 0 };
  return { ok: check.ok, checks: [...check.checks, ...(await checkWebApiAccess(client, features))] };
}

/** Per sync a headline, then one line per check: ✓ or ✗, which side, what was checked and what came of it. */
export function renderValidation(results: SyncValidation[]): string {
  const blocks = results.map((result) => {
    const all = [...result.source.checks, ...result.teamviewer.checks];
    const failed = all.filter((c) => !c.ok).length;
    const warned = all.filter((c) => c.ok && c.detail.startsWith(WARNING)).length;
    const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
    const verdict = !result.ok
      ? `FAILED${failed > 0 ? ` (${plural(failed, 'check')} of ${all.length} failed)` : ''}`
      : warned > 0
        ? `ok, with ${plural(warned, 'warning')}`
        : 'ok';
    const lines = [`sync ${result.sync}: ${verdict}`];
    for (const [side, check] of [
      ['source', result.source],
      ['TeamViewer', result.teamviewer],
    ] as const) {
      if (check.checks.length === 0) lines.push(`  ${check.ok ? '✓' : '✗'} ${side}: no check ran`);
      for (const c of check.checks) lines.push(`  ${c.ok ? '✓' : '✗'} ${side} · ${c.name}: ${c.detail}`);
    }
    return lines.join('\n');
  });
  return blocks.join('\n\n');
}

export interface ValidateOptions {
  config?: string;
  sync?: string;
}

/** `tvsync validate`: tests the connection to each sync's IdP and TeamViewer; writes nothing. */
export async function validateCommand(opts: ValidateOptions): Promise<void> {
  const { config, log } = load(opts.config);
  const results = await validateSyncs(config, selectSyncs(config, opts.sync), { log });
  process.stdout.write(`${renderValidation(results)}\n`);
  process.exitCode = results.every((r) => r.ok) ? EXIT.ok : EXIT.failed;
}
