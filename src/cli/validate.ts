import { randomUUID } from 'node:crypto';
import axios from 'axios';
import type { SyncConfig, TargetConfig, TvsyncConfig } from '../config/schema.js';
import { createSource } from '../connectors/index.js';
import { SyncError } from '../model/failure.js';
import type { Logger } from '../observe/log.js';
import { emailKey } from '../plan/mapping.js';
import { createTeamViewerClient } from '../runtime/wiring.js';
import type { ConnectionCheck } from '../connectors/source.js';
import { MemoryStateStore } from '../store/memory-state.js';
import { classifyHttpFailure } from '../teamviewer/errors.js';
import type { TeamViewerScimClient } from '../teamviewer/scim-client.js';
import { listResponseSchema, scimUserSchema } from '../teamviewer/wire.js';

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

type Check = ConnectionCheck['checks'][number];

/** Checks that pass but want attention start with this; renderValidation shows them as such. */
const WARNING = 'warning: ';

const REFUSED = 'the token was refused: TeamViewer does not accept target.token (invalid, expired or revoked); create a new script token in the Management Console';

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
    return { ok: false, checks: [{ name: `${sync.source.type} source`, ok: false, detail: `could not be checked: ${err instanceof Error ? err.message : String(err)}` }] };
  }
}

async function checkTeamViewer(sync: SyncConfig): Promise<ConnectionCheck> {
  const checks: Check[] = [];
  const users = await checkUsers(sync.target);
  checks.push(users.check);
  // A refused token, no answer or a wrong address would only repeat itself in every later check.
  if (users.goOn) {
    const client = createTeamViewerClient(sync.target);
    checks.push(await checkTokenOwner(client, sync.target));
    checks.push(await checkGroups(client, sync));
  }
  return { ok: checks.every((c) => c.ok), checks };
}

/**
 * One page of one user, as a single raw request: the SCIM client's listUsers goes on until
 * totalResults is reached (every user, one request each at count=1) and the client offers no
 * single-page read, so this sends the client's own headers itself and classifies like it does.
 */
async function checkUsers(target: TargetConfig): Promise<{ check: Check; goOn: boolean }> {
  const name = 'authenticate and list users';
  const fail = (detail: string, goOn: boolean) => ({ check: { name, ok: false, detail }, goOn });
  const path = '/Users';
  let response;
  try {
    response = await axios.get<unknown>(`${target.baseUrl.replace(/\/+$/, '')}${path}?startIndex=1&count=1`, {
      headers: { Authorization: `Bearer ${target.token}`, 'Content-Type': 'application/scim+json', Accept: 'application/scim+json, application/json' },
      timeout: target.timeout,
      validateStatus: () => true,
      responseType: 'text',
      transformResponse: [(data: unknown) => data],
      maxRedirects: 0,
    });
  } catch (err) {
    // Only the error code is used: the error itself carries the request headers, and so the token.
    return fail(`no answer from ${target.baseUrl} (${errorCode(err)}): check target.baseUrl and that this machine can reach TeamViewer`, false);
  }
  const body = parseBody(response.data);
  if (response.status !== 200) {
    const err = classifyHttpFailure({ method: 'GET', path, status: response.status, body, headers: { ...response.headers } });
    if (err.failureClass === 'unauthorised') return fail(`${REFUSED} (HTTP ${response.status})`, false);
    if (err.failureClass === 'not-found') return fail(`${err.message}; is target.baseUrl TeamViewer's SCIM endpoint (…/scim/v2)?`, false);
    // A token that may not list users can still show what else it may do.
    return fail(err.message, err.failureClass === 'forbidden');
  }
  const page = listResponseSchema(scimUserSchema).safeParse(body);
  if (!page.success) return fail(`GET ${path} answered 200 with something that is not a SCIM user list; is target.baseUrl TeamViewer's SCIM endpoint (…/scim/v2)?`, false);
  const count = page.data.totalResults;
  return { check: { name, ok: true, detail: `the token was accepted; ${count === undefined ? 'users can be listed' : `the company has ${count} user${count === 1 ? '' : 's'}`}` }, goOn: true };
}

async function checkTokenOwner(client: TeamViewerScimClient, target: TargetConfig): Promise<Check> {
  const name = 'token owner';
  const configured = target.tokenOwner;
  try {
    const owner = await client.getTokenOwner();
    if (owner && configured && emailKey(owner.email) !== emailKey(configured)) {
      return { name, ok: false, detail: `target.tokenOwner is ${configured}, but the token belongs to ${owner.email}, who is then not protected from deactivation; correct target.tokenOwner` };
    }
    if (owner) return { name, ok: true, detail: `the token belongs to ${owner.email}${owner.name ? ` (${owner.name})` : ''}, who is never deactivated` };
    if (configured) return { name, ok: true, detail: `TeamViewer does not say who owns the token (no permission to read account data); target.tokenOwner ${configured} is protected` };
    return { name, ok: true, detail: `${WARNING}TeamViewer does not say who owns the token (no permission to read account data); set target.tokenOwner to its e-mail so that account is never deactivated` };
  } catch (err) {
    if (err instanceof SyncError && err.failureClass === 'unauthorised') return { name, ok: false, detail: REFUSED };
    const reason = err instanceof Error ? err.message : String(err);
    // Cycles run on without the owner too (it is then unprotected by name), so this only warns.
    if (configured) return { name, ok: true, detail: `${WARNING}the token owner could not be looked up (${reason}); target.tokenOwner ${configured} is protected` };
    return { name, ok: true, detail: `${WARNING}the token owner could not be looked up (${reason}); set target.tokenOwner to its e-mail so that account is never deactivated` };
  }
}

async function checkGroups(client: TeamViewerScimClient, sync: SyncConfig): Promise<Check> {
  const name = 'user groups';
  if (!sync.groups.enabled) return { name, ok: true, detail: 'not checked: group sync is off (groups.enabled: false)' };
  try {
    // A name no group has: the lookup exercises GET /Groups and finds nothing, whatever the company holds.
    await client.findGroupByName(`tvsync-validate-${randomUUID()}`);
    return { name, ok: true, detail: 'the /Groups endpoint answers: user groups can be synced' };
  } catch (err) {
    if (err instanceof SyncError) {
      if (err.failureClass === 'unavailable') {
        return { name, ok: true, detail: `${WARNING}/Groups is unavailable for this company (HTTP ${err.status ?? '?'}): users are synced, group sync will be skipped; set groups.enabled: false to stop trying` };
      }
      if (err.failureClass === 'unauthorised') return { name, ok: false, detail: REFUSED };
    }
    return { name, ok: false, detail: err instanceof Error ? err.message : String(err) };
  }
}

function parseBody(text: unknown): unknown {
  if (typeof text !== 'string' || text.trim() === '') return text;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function errorCode(err: unknown): string {
  if (!axios.isAxiosError(err)) return 'network error';
  const cause: unknown = err.cause;
  // Node's own code (ECONNREFUSED, ENOTFOUND) says more than axios' generic ERR_NETWORK.
  if (cause && typeof cause === 'object' && 'code' in cause && typeof cause.code === 'string') return cause.code;
  return err.code ?? 'network error';
}

/** Per sync a headline, then one line per check: ✓ or ✗, which side, what was checked and what came of it. */
export function renderValidation(results: SyncValidation[]): string {
  const blocks = results.map((result) => {
    const all = [...result.source.checks, ...result.teamviewer.checks];
    const failed = all.filter((c) => !c.ok).length;
    const warned = all.filter((c) => c.ok && c.detail.startsWith(WARNING)).length;
    const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
    const verdict = !result.ok ? `FAILED${failed > 0 ? ` (${plural(failed, 'check')} of ${all.length} failed)` : ''}` : warned > 0 ? `ok, with ${plural(warned, 'warning')}` : 'ok';
    const lines = [`sync ${result.sync}: ${verdict}`];
    for (const [side, check] of [['source', result.source], ['TeamViewer', result.teamviewer]] as const) {
      if (check.checks.length === 0) lines.push(`  ${check.ok ? '✓' : '✗'} ${side}: no check ran`);
      for (const c of check.checks) lines.push(`  ${c.ok ? '✓' : '✗'} ${side} · ${c.name}: ${c.detail}`);
    }
    return lines.join('\n');
  });
  return blocks.join('\n\n');
}
