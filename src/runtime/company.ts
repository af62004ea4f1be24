import { SyncError } from '../model/failure.js';
import { applySeats, seatsOf } from '../plan/seats.js';
import { planBreakGlass, summariseSso, type BreakGlassOutcome, type SsoHealth } from '../plan/sso.js';
import type { Plan } from '../plan/types.js';
import { CompanyClient } from '../teamviewer/company-client.js';
import { withTeamViewerRetries, type SyncSides } from './prepare.js';

/*
 * The Web API side of a cycle: the licence's seats before creates, and SSO health. A token without
 * the permission turns the feature off with one line (a notice and a log line); the users' sync goes on.
 */

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A 401 stops the cycle as everywhere else; a caller's abort is not a failure of the feature. */
function rethrowFatal(err: unknown, signal: AbortSignal | undefined): void {
  if (err instanceof SyncError && err.failureClass === 'unauthorised') throw err;
  if (signal?.aborted) throw err;
}

function companyClient(sides: SyncSides): CompanyClient | undefined {
  return sides.webApi ? new CompanyClient(sides.webApi) : undefined;
}

/**
 * seats.enabled: reads the licence and holds the creates beyond its free seats (plan/seats.ts).
 * When the licence cannot be read the plan is left as it is, with one notice saying why.
 */
export async function checkSeats(sides: SyncSides, plan: Plan, signal?: AbortSignal): Promise<Plan> {
  if (!sides.sync.seats.enabled) return plan;
  const off = (why: string): Plan => {
    const line = `Seats are not checked this cycle: ${why}; creates run without a seat check.`;
    sides.log.warn({ sync: sides.sync.name }, line);
    return { ...plan, notices: [...plan.notices, line] };
  };
  const client = companyClient(sides);
  if (!client) return off('no Web API connection is configured for this sync');
  try {
    const licences = await withTeamViewerRetries(sides, 'company licence', () => client.licences(signal), signal);
    const seats = seatsOf(licences);
    if (!seats) return off('the company licence states no user limit (no active licence with maxAssignments)');
    return applySeats(plan, seats);
  } catch (err) {
    rethrowFatal(err, signal);
    if (err instanceof SyncError && err.failureClass === 'forbidden') {
      return off('the token may not read the company licence (HTTP 403 on /company/license); grant it licence read access, or set seats.enabled: false');
    }
    return off(`the company licence could not be read (${messageOf(err)})`);
  }
}

/**
 * For one create outside a cycle (the fast lane, `tvsync sync-user`): the free seats, or undefined
 * when seats are not checked (off, no permission, no user limit, unreadable: as in a cycle, the
 * create then runs and the cycle's report says why seats were not checked).
 */
export async function freeSeats(sides: SyncSides, signal?: AbortSignal): Promise<number | undefined> {
  if (!sides.sync.seats.enabled) return undefined;
  const client = companyClient(sides);
  if (!client) return undefined;
  try {
    const seats = seatsOf(await withTeamViewerRetries(sides, 'company licence', () => client.licences(signal), signal));
    return seats?.free;
  } catch (err) {
    rethrowFatal(err, signal);
    sides.log.warn({ sync: sides.sync.name, err: messageOf(err) }, 'seats could not be checked before a user sync create');
    return undefined;
  }
}

/**
 * sso.report and sso.breakGlass: reads the users' SSO status and keeps the break-glass addresses on
 * the exclusion list. Undefined when neither is configured (no Web API call at all).
 */
export async function checkSso(sides: SyncSides, signal?: AbortSignal): Promise<SsoHealth | undefined> {
  const { report, breakGlass } = sides.sync.sso;
  if (!report && breakGlass.length === 0) return undefined;
  const off = (detail: string): SsoHealth => {
    sides.log.warn({ sync: sides.sync.name }, detail);
    return { status: 'off', detail, notActive: {}, users: [] };
  };
  const client = companyClient(sides);
  if (!client) return off('SSO health is off this cycle: no Web API connection is configured for this sync');
  let health: SsoHealth = { status: 'checked', notActive: {}, users: [] };
  if (report) {
    try {
      const users = await withTeamViewerRetries(sides, 'Web API user list', () => client.users(signal), signal);
      health = { ...health, ...summariseSso(users, breakGlass) };
    } catch (err) {
      rethrowFatal(err, signal);
      health =
        err instanceof SyncError && err.failureClass === 'forbidden'
          ? off(
              'SSO status is not reported: the token may not read users over the Web API (HTTP 403 on /users); grant user read access, or set sso.report: false',
            )
          : off(`SSO status is not reported this cycle: the Web API user list could not be read (${messageOf(err)})`);
    }
  }
  if (breakGlass.length > 0) health.breakGlass = await keepBreakGlass(sides, client, signal);
  return health;
}

async function keepBreakGlass(sides: SyncSides, client: CompanyClient, signal: AbortSignal | undefined): Promise<BreakGlassOutcome> {
  const { breakGlass, domainId: configured } = sides.sync.sso;
  const outcome: BreakGlassOutcome = { added: [], present: [], onInclusionList: [] };
  const stop = (detail: string): BreakGlassOutcome => {
    sides.log.warn({ sync: sides.sync.name }, detail);
    return { ...outcome, detail };
  };
  try {
    let domainId = configured;
    if (!domainId) {
      const domains = await withTeamViewerRetries(sides, 'SSO domains', () => client.ssoDomains(signal), signal);
      if (domains.length === 0) return stop('Break-glass addresses are not kept: the company has no SSO domain');
      if (domains.length > 1) {
        return stop(
          `Break-glass addresses are not kept: the company has ${domains.length} SSO domains (${domains.map((d) => d.id).join(', ')}); set sso.domainId`,
        );
      }
      domainId = domains[0]?.id;
    }
    if (!domainId) return stop('Break-glass addresses are not kept: no SSO domain id');
    outcome.domainId = domainId;
    const id = domainId;
    const [exclusion, inclusion] = await Promise.all([
      withTeamViewerRetries(sides, 'SSO exclusion list', () => client.ssoList(id, 'exclusion', signal), signal),
      withTeamViewerRetries(sides, 'SSO inclusion list', () => client.ssoList(id, 'inclusion', signal), signal),
    ]);
    const planned = planBreakGlass(breakGlass, { exclusion, inclusion });
    outcome.present = planned.present;
    outcome.onInclusionList = planned.onInclusionList;
    if (planned.onInclusionList.length > 0) {
      sides.log.warn(
        { sync: sides.sync.name, addresses: planned.onInclusionList },
        'break-glass addresses on the SSO inclusion list were not put on the exclusion list (never both lists); take them off the inclusion list',
      );
    }
    if (planned.add.length > 0 && planned.includedGroups.length > 0) {
      // Never both lists: an address may be included through a group, which tvsync cannot see into.
      outcome.detail = `Break-glass addresses ${planned.add.join(', ')} were not put on the SSO exclusion list: the inclusion list names user groups (${planned.includedGroups.length}), and an address included through one must not be excluded too; add them by hand after checking, or list addresses instead of groups`;
      sides.log.warn({ sync: sides.sync.name, addresses: planned.add }, outcome.detail);
      return outcome;
    }
    if (planned.add.length > 0) {
      await client.addExclusions(id, planned.add);
      outcome.added = planned.add;
      sides.log.info({ sync: sides.sync.name, added: planned.add }, 'break-glass addresses added to the SSO exclusion list');
    }
    return outcome;
  } catch (err) {
    rethrowFatal(err, signal);
    if (err instanceof SyncError && err.failureClass === 'forbidden') {
      return stop('Break-glass addresses are not kept: the token may not manage SSO domains (HTTP 403 on /ssoDomain); grant it, or empty sso.breakGlass');
    }
    return stop(`Break-glass addresses are not kept this cycle: ${messageOf(err)}`);
  }
}
