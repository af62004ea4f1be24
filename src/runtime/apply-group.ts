import { SyncError, type FailureClass } from '../model/failure.js';
import type { GroupOperation } from '../plan/group-types.js';
import type { SyncState } from '../store/sync-state.js';
import type { GroupWriter } from '../teamviewer/port.js';

export interface GroupApplyContext {
  client: GroupWriter;
  state: SyncState;
  batchSize: number;
}

/** What became of one group operation; `members` are the TeamViewer users a create that adopted a group added. */
export type GroupOperationOutcome =
  | { status: 'applied'; tvGroupId: string; adopted?: boolean; members?: string[]; message: string }
  | { status: 'failed'; failureClass: FailureClass; message: string; tvGroupId?: string };

const PERMANENT_FOR_OBJECT: ReadonlySet<FailureClass> = new Set(['forbidden', 'invalid', 'not-found', 'conflict', 'unavailable']);

function batches<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * Applies one planned group operation. Returns the outcome for the report; throws SyncError for
 * what the caller must handle (transient and rate-limited: retry; unauthorised: stop the cycle).
 */
export async function applyGroupOperation(op: GroupOperation, ctx: GroupApplyContext): Promise<GroupOperationOutcome> {
  try {
    switch (op.kind) {
      case 'createGroup':
        return await applyCreateGroup(op, ctx);
      case 'renameGroup':
        await ctx.client.renameGroup(op.tvGroupId, op.displayName);
        return { status: 'applied', tvGroupId: op.tvGroupId, message: op.message };
      case 'addGroupMembers':
        await ctx.client.addGroupMembers(op.tvGroupId, op.memberIds);
        return { status: 'applied', tvGroupId: op.tvGroupId, message: op.message };
      case 'removeGroupMembers':
        await ctx.client.removeGroupMembers(op.tvGroupId, op.memberIds);
        return { status: 'applied', tvGroupId: op.tvGroupId, message: op.message };
      case 'deleteGroup':
        await ctx.client.deleteGroup(op.tvGroupId);
        await ctx.state.dropGroupLink(op.sourceGroupId, op.tvGroupId);
        return { status: 'applied', tvGroupId: op.tvGroupId, message: op.message };
    }
  } catch (err) {
    if (err instanceof SyncError && PERMANENT_FOR_OBJECT.has(err.failureClass)) {
      const tvGroupId = 'tvGroupId' in op ? op.tvGroupId : undefined;
      return { status: 'failed', failureClass: err.failureClass, message: `${op.message}: ${err.message}`, ...(tvGroupId ? { tvGroupId } : {}) };
    }
    throw err;
  }
}

/**
 * Creates the group with its first batch of members and adds the rest in batches: the new id is
 * only known here, so these batches cannot be separate planned operations. A retry, or a name
 * taken in the meantime, adopts the existing group and adds only the members it lacks.
 */
async function applyCreateGroup(op: Extract<GroupOperation, { kind: 'createGroup' }>, ctx: GroupApplyContext): Promise<GroupOperationOutcome> {
  // Group names have no documented uniqueness at TeamViewer: always look before creating, so a
  // re-run can never leave two groups of one name.
  let existing = await ctx.client.findGroupByName(op.displayName);
  if (!existing) {
    const [first = [], ...rest] = batches(op.memberIds, ctx.batchSize);
    try {
      const created = await ctx.client.createGroup(op.displayName, first);
      await ctx.state.setGroupLink(op.sourceGroupId, created.id);
      for (const batch of rest) await ctx.client.addGroupMembers(created.id, batch);
      return { status: 'applied', tvGroupId: created.id, message: `${op.message} (TeamViewer group ${created.id})` };
    } catch (err) {
      if (!(err instanceof SyncError) || err.failureClass !== 'conflict') throw err;
      existing = await ctx.client.findGroupByName(op.displayName);
      if (!existing) throw err;
    }
  }
  await ctx.state.setGroupLink(op.sourceGroupId, existing.id);
  const has = new Set(existing.memberIds);
  const pending = op.memberIds.filter((id) => !has.has(id));
  for (const batch of batches(pending, ctx.batchSize)) await ctx.client.addGroupMembers(existing.id, batch);
  return {
    status: 'applied',
    tvGroupId: existing.id,
    adopted: true,
    members: pending,
    message: `${op.message}: adopted the existing TeamViewer group ${existing.id}, ${pending.length} members added`,
  };
}
