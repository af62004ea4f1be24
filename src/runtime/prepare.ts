import type { Logger } from 'pino';
import type { SyncConfig } from '../config/schema.js';
import type { DirectoryRead } from '../model/directory.js';
import { SyncError } from '../model/failure.js';
import type { TvUser } from '../model/teamviewer.js';
import { computePlan } from '../plan/diff.js';
import type { Plan, PlanPolicy } from '../plan/types.js';
import type { DirectorySource } from '../sources/source.js';
import type { SyncState } from '../store/sync-state.js';
import type { TeamViewerScimClient } from '../teamviewer/scim-client.js';
import { DEFAULT_BACKOFF, withRetries, type BackoffPolicy } from '../net/retry.js';

/** Everything one sync needs to read both sides and plan; the edges are passed in, so tests swap them. */
export interface SyncSides {
  sync: SyncConfig;
  source: DirectorySource;
  client: TeamViewerScimClient;
  state: SyncState;
  log: Logger;
  now: () => number;
  /** Retries of the TeamViewer reads (transient and rate-limited answers). */
  readBackoff?: BackoffPolicy;
}

export interface PreparedPlan {
  plan: Plan;
  directory: DirectoryRead;
  teamviewer: TvUser[];
  tokenOwner?: string;
}

export function planPolicy(sync: SyncConfig, tokenOwner: string | undefined, approved?: ReadonlySet<string>): PlanPolicy {
  const policy: PlanPolicy = {
    protect: sync.protect,
    threshold: sync.policy.deactivationThreshold,
    outsideCompanyRetryMs: sync.policy.outsideCompanyRetry,
  };
  if (sync.ssoCustomerId) policy.ssoCustomerId = sync.ssoCustomerId;
  if (tokenOwner) policy.tokenOwnerEmail = tokenOwner;
  if (approved) policy.approvedDeactivations = approved;
  return policy;
}

function withTeamViewerRetries<T>(sides: SyncSides, what: string, fn: () => Promise<T>): Promise<T> {
  return withRetries(fn, sides.readBackoff ?? DEFAULT_BACKOFF, {
    onRetry: (err, waitMs, attempt) => sides.log.warn({ what, failureClass: err.failureClass, waitMs, attempt: attempt + 1, err: err.message }, 'TeamViewer read failed; retrying'),
  });
}

/** The token owner must never be deactivated: from config, else asked of TeamViewer. */
async function resolveTokenOwner(sides: SyncSides): Promise<string | undefined> {
  if (sides.sync.target.tokenOwner) return sides.sync.target.tokenOwner;
  try {
    const owner = await withTeamViewerRetries(sides, 'token owner', () => sides.client.getTokenOwner());
    return owner?.email;
  } catch (err) {
    if (err instanceof SyncError && err.failureClass === 'unauthorised') throw err;
    sides.log.warn({ sync: sides.sync.name, err: err instanceof Error ? err.message : String(err) }, 'could not look up the token owner');
    return undefined;
  }
}

/**
 * Reads the IdP and TeamViewer and computes the plan. A failed IdP read throws (SourceReadError):
 * no plan, so nothing is deactivated, and the caller reports why.
 */
export async function readAndPlan(sides: SyncSides, opts: { approved?: ReadonlySet<string> } = {}): Promise<PreparedPlan> {
  const [directory, teamviewer, tokenOwner, links, outsideCompany] = await Promise.all([
    sides.source.read(),
    withTeamViewerRetries(sides, 'user list', () => sides.client.listUsers()),
    resolveTokenOwner(sides),
    sides.state.loadLinks(),
    sides.state.loadOutsideCompany(),
  ]);
  const plan = computePlan({ directory, teamviewer, links, outsideCompany, nowMs: sides.now(), policy: planPolicy(sides.sync, tokenOwner, opts.approved) });
  if (!tokenOwner) plan.notices.push('The owner of the TeamViewer token is unknown (the token may lack account read permission); set target.tokenOwner so it is protected by name.');
  if (!sides.state.durable) plan.notices.push('No Redis: links are unknown, users are matched by e-mail only, and no removed user can be recognised for deactivation.');
  for (const issue of directory.issues) sides.log.warn({ sync: sides.sync.name, issue }, 'IdP record skipped');
  const prepared: PreparedPlan = { plan, directory, teamviewer };
  if (tokenOwner) prepared.tokenOwner = tokenOwner;
  return prepared;
}
