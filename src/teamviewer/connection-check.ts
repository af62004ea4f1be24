import { randomUUID } from 'node:crypto';
import type { ConnectionCheck } from '../connectors/source.js';
import { SyncError } from '../model/failure.js';
import { emailKey } from '../plan/mapping.js';
import { NoAnswerError } from './errors.js';
import type { TeamViewerScimClient } from './scim-client.js';

/*
 * TeamViewer's side of `tvsync validate`, like an IdP's "Test connection" button. It only reads
 * (one page of one user, the token owner, one group look-up), so it is safe against production.
 */

type Check = ConnectionCheck['checks'][number];

export interface ConnectionTarget {
  /** As configured, for messages. */
  baseUrl: string;
  /** target.tokenOwner, when set. */
  tokenOwner?: string | undefined;
  /** groups.enabled: /Groups is only checked when groups are synced. */
  groups: boolean;
}

/** Checks that pass but want attention start with this. */
export const WARNING = 'warning: ';

const REFUSED =
  'the token was refused: TeamViewer does not accept target.token (invalid, expired or revoked); create a new script token in the Management Console';

const NOT_SCIM = "is target.baseUrl TeamViewer's SCIM endpoint (…/scim/v2)?";

/** Never throws for a failed check. */
export async function checkTeamViewerConnection(client: TeamViewerScimClient, target: ConnectionTarget): Promise<ConnectionCheck> {
  const checks: Check[] = [];
  const users = await checkUsers(client, target);
  checks.push(users.check);
  // A refused token, no answer or a wrong address would only repeat itself in every later check.
  if (users.goOn) {
    checks.push(await checkTokenOwner(client, target));
    checks.push(await checkGroups(client, target));
  }
  return { ok: checks.every((c) => c.ok), checks };
}

/** One page of one user: the full list read would go on through every user of the company. */
async function checkUsers(client: TeamViewerScimClient, target: ConnectionTarget): Promise<{ check: Check; goOn: boolean }> {
  const name = 'authenticate and list users';
  const fail = (detail: string, goOn: boolean) => ({ check: { name, ok: false, detail }, goOn });
  try {
    const { totalResults: count } = await client.userPage({ count: 1 });
    return { check: { name, ok: true, detail: `the token was accepted; the company has ${count} user${count === 1 ? '' : 's'}` }, goOn: true };
  } catch (err) {
    if (err instanceof NoAnswerError) {
      return fail(`no answer from ${target.baseUrl} (${err.code}): check target.baseUrl and that this machine can reach TeamViewer`, false);
    }
    if (!(err instanceof SyncError)) return fail(err instanceof Error ? err.message : String(err), false);
    if (err.status === 200) return fail(`GET /Users answered 200 with something that is not a SCIM user list; ${NOT_SCIM}`, false);
    if (err.failureClass === 'unauthorised') return fail(`${REFUSED} (HTTP ${err.status ?? '?'})`, false);
    if (err.failureClass === 'not-found') return fail(`${err.message}; ${NOT_SCIM}`, false);
    // A token that may not list users can still show what else it may do.
    return fail(err.message, err.failureClass === 'forbidden');
  }
}

async function checkTokenOwner(client: TeamViewerScimClient, target: ConnectionTarget): Promise<Check> {
  const name = 'token owner';
  const configured = target.tokenOwner;
  try {
    const owner = await client.getTokenOwner();
    if (owner && configured && emailKey(owner.email) !== emailKey(configured)) {
      return {
        name,
        ok: false,
        detail: `target.tokenOwner is ${configured}, but the token belongs to ${owner.email}, who is then not protected from deactivation; correct target.tokenOwner`,
      };
    }
    if (owner) return { name, ok: true, detail: `the token belongs to ${owner.email}${owner.name ? ` (${owner.name})` : ''}, who is never deactivated` };
    if (configured)
      return {
        name,
        ok: true,
        detail: `TeamViewer does not say who owns the token (no permission to read account data); target.tokenOwner ${configured} is protected`,
      };
    return {
      name,
      ok: true,
      detail: `${WARNING}TeamViewer does not say who owns the token (no permission to read account data); set target.tokenOwner to its e-mail so that account is never deactivated`,
    };
  } catch (err) {
    if (err instanceof SyncError && err.failureClass === 'unauthorised') return { name, ok: false, detail: REFUSED };
    const reason = err instanceof Error ? err.message : String(err);
    // Cycles run on without the owner too (it is then unprotected by name), so this only warns.
    if (configured)
      return { name, ok: true, detail: `${WARNING}the token owner could not be looked up (${reason}); target.tokenOwner ${configured} is protected` };
    return {
      name,
      ok: true,
      detail: `${WARNING}the token owner could not be looked up (${reason}); set target.tokenOwner to its e-mail so that account is never deactivated`,
    };
  }
}

async function checkGroups(client: TeamViewerScimClient, target: ConnectionTarget): Promise<Check> {
  const name = 'user groups';
  if (!target.groups) return { name, ok: true, detail: 'not checked: group sync is off (groups.enabled: false)' };
  try {
    // A name no group has: the look-up exercises GET /Groups and finds nothing, whatever the company holds.
    await client.findGroupByName(`tvsync-validate-${randomUUID()}`);
    return { name, ok: true, detail: 'the /Groups endpoint answers: user groups can be synced' };
  } catch (err) {
    if (err instanceof SyncError) {
      if (err.failureClass === 'unavailable') {
        return {
          name,
          ok: true,
          detail: `${WARNING}/Groups is unavailable for this company (HTTP ${err.status ?? '?'}): users are synced, group sync will be skipped; set groups.enabled: false to stop trying`,
        };
      }
      if (err.failureClass === 'unauthorised') return { name, ok: false, detail: REFUSED };
    }
    return { name, ok: false, detail: err instanceof Error ? err.message : String(err) };
  }
}
