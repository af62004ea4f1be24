import { SyncError, type FailureClass } from '../model/failure.js';
import type { TvUser, TvUserChanges } from '../model/teamviewer.js';
import { emailKey } from '../plan/mapping.js';
import { recycledAddress } from '../plan/recycled.js';
import type { ChangeUserOperation, CreateUserOperation, UserOperation } from '../plan/types.js';
import type { SyncState } from '../store/sync-state.js';
import type { UserWriter } from '../teamviewer/port.js';

export type OperationOutcome =
  | { status: 'applied'; tvUserId: string; adopted?: boolean; message: string }
  | { status: 'failed'; failureClass: FailureClass; message: string; tvUserId?: string };

export interface ApplyContext {
  client: UserWriter;
  state: SyncState;
  nowMs: () => number;
  /**
   * Look the user up before creating: set on any attempt after the first, since an earlier attempt
   * (a 5xx on create, a worker killed mid-request) may have created the user already.
   */
  lookupFirst?: boolean;
  /**
   * Where the link of a create goes instead of being written here: the caller writes it with the
   * outcome, the link first, so both share one round trip (with other operations' outcomes).
   */
  deferredLinks?: [sourceId: string, tvUserId: string][];
}

async function writeLink(ctx: ApplyContext, sourceId: string, tvUserId: string): Promise<void> {
  if (ctx.deferredLinks) ctx.deferredLinks.push([sourceId, tvUserId]);
  else await ctx.state.setLink(sourceId, tvUserId);
}

/** Classes that concern this object only: recorded in the report, never retried. */
const PERMANENT_FOR_OBJECT: ReadonlySet<FailureClass> = new Set(['forbidden', 'invalid', 'not-found', 'owned-outside-company', 'conflict']);

/**
 * Applies one planned user operation. Returns the outcome for the report; throws SyncError for
 * what the caller must handle (transient and rate-limited: retry; unauthorised: stop the cycle).
 */
export async function applyUserOperation(op: UserOperation, ctx: ApplyContext): Promise<OperationOutcome> {
  try {
    return op.kind === 'createUser' ? await applyCreate(op, ctx) : await applyChange(op, ctx);
  } catch (err) {
    if (err instanceof SyncError && PERMANENT_FOR_OBJECT.has(err.failureClass)) {
      const outcome: OperationOutcome = { status: 'failed', failureClass: err.failureClass, message: `${op.kind} ${op.email}: ${err.message}` };
      if (op.kind !== 'createUser') outcome.tvUserId = op.tvUserId;
      return outcome;
    }
    throw err;
  }
}

async function applyCreate(op: CreateUserOperation, ctx: ApplyContext): Promise<OperationOutcome> {
  if (ctx.lookupFirst) {
    const existing = await ctx.client.findUserByEmail(op.email);
    if (existing) return adopt(op, existing, ctx, 'found on retry: an earlier attempt had created it');
  }
  let created: TvUser;
  try {
    created = await ctx.client.createUser(op.user);
  } catch (err) {
    if (!(err instanceof SyncError) || err.failureClass !== 'conflict') throw err;
    // TeamViewer addresses are unique across all of TeamViewer: in the company → adopt, else a person must act.
    const existing = await ctx.client.findUserByEmail(op.email);
    if (existing) return adopt(op, existing, ctx, 'already in the company');
    const message = `${op.email} is used by a TeamViewer account outside the company (${err.message}); ask its owner to release it or add the account to the company`;
    await ctx.state.recordOutsideCompany(emailKey(op.email), { atMs: ctx.nowMs(), message: err.message });
    return { status: 'failed', failureClass: 'owned-outside-company', message };
  }
  await writeLink(ctx, op.sourceId, created.id);
  if (op.reason === 'retry-after-outside-conflict') await ctx.state.clearOutsideCompany(emailKey(op.email));
  return { status: 'applied', tvUserId: created.id, message: `created ${op.email} as ${created.id}` };
}

/** Links an existing company user instead of creating a second one, then brings it to the desired state. */
async function adopt(op: CreateUserOperation, existing: TvUser, ctx: ApplyContext, why: string): Promise<OperationOutcome> {
  // The plan saw no such user; one found now is not reactivated for another person behind the plan's back.
  if (!existing.active) {
    const [deactivated, links] = await Promise.all([ctx.state.getDeactivated(existing.id), ctx.state.loadLinks()]);
    // Another IdP id linked to it makes it someone else's user too, even where tvsync did not deactivate it.
    const holders = [...links].filter(([sourceId, tvUserId]) => tvUserId === existing.id && sourceId !== op.sourceId).map(([sourceId]) => sourceId);
    const verdict = recycledAddress({ sourceId: op.sourceId, email: op.email, tv: existing, holders, deactivated }, { recycledAddresses: 'hold' });
    if (verdict.recycled && 'held' in verdict) {
      return { status: 'failed', failureClass: 'conflict', tvUserId: existing.id, message: `${verdict.held.message} The next cycle decides.` };
    }
  }
  await ctx.state.setLink(op.sourceId, existing.id);
  await ctx.state.clearOutsideCompany(emailKey(op.email));
  const changes: TvUserChanges = {};
  if (existing.displayName !== op.user.displayName) changes.displayName = op.user.displayName;
  if (!existing.active) changes.active = true;
  if (changes.displayName !== undefined || changes.active !== undefined) await ctx.client.updateUser(existing.id, changes);
  if (changes.active) await ctx.state.clearDeactivated(existing.id);
  return { status: 'applied', tvUserId: existing.id, adopted: true, message: `adopted ${existing.id} for ${op.email} (${why})` };
}

async function applyChange(op: ChangeUserOperation, ctx: ApplyContext): Promise<OperationOutcome> {
  await ctx.client.updateUser(op.tvUserId, op.changes);
  // Whose user tvsync deactivated outlives the link: a newcomer given the same address later is a recycled address.
  if (op.kind === 'deactivateUser') await ctx.state.recordDeactivated(op.tvUserId, { sourceId: op.sourceId, atMs: ctx.nowMs() });
  else if (op.kind === 'reactivateUser') await ctx.state.clearDeactivated(op.tvUserId);
  return { status: 'applied', tvUserId: op.tvUserId, message: op.message };
}
