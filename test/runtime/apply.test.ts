import { describe, expect, it } from 'vitest';
import { SyncError } from '../../src/model/failure.js';
import type { TvUser } from '../../src/model/teamviewer.js';
import { applyUserOperation } from '../../src/runtime/apply.js';
import { MemorySyncState } from '../../src/store/sync-state.js';
import type { UserWriter } from '../../src/teamviewer/port.js';

const op = {
  kind: 'createUser' as const,
  sourceId: 'idp-new',
  email: 'ada@corp.example',
  user: { userName: 'ada@corp.example', displayName: 'Ada New', active: true },
  reason: 'new-in-scope' as const,
  message: 'create ada@corp.example',
};

/** TeamViewer already holds the address (the plan did not see it): a create answers 409, the look-up finds it. */
function teamviewerHolding(existing: TvUser): UserWriter & { updates: unknown[] } {
  const updates: unknown[] = [];
  return {
    updates,
    findUserByEmail: async () => existing,
    createUser: async () => {
      throw new SyncError('conflict', 'userName already exists', { status: 409 });
    },
    updateUser: async (id, changes) => {
      updates.push({ id, changes });
      return { ...existing, ...changes };
    },
  };
}

describe('a create that meets a user the plan did not see', () => {
  const old: TvUser = { id: 'u7', userName: 'ada@corp.example', email: 'ada@corp.example', displayName: 'Ada Old', active: false };

  it('does not reactivate a deactivated user another IdP id is linked to (a recycled address): the next cycle decides', async () => {
    const state = new MemorySyncState();
    await state.setLink('idp-old', 'u7');
    const client = teamviewerHolding(old);
    const outcome = await applyUserOperation(op, { client, state, nowMs: () => 1 });
    expect(outcome).toMatchObject({ status: 'failed', failureClass: 'conflict', tvUserId: 'u7' });
    expect(client.updates).toEqual([]);
    expect(await state.getLink('idp-new')).toBeUndefined();
  });

  it('adopts an active user, or a deactivated one nobody else is linked to', async () => {
    const state = new MemorySyncState();
    const client = teamviewerHolding(old);
    const outcome = await applyUserOperation(op, { client, state, nowMs: () => 1 });
    expect(outcome).toMatchObject({ status: 'applied', tvUserId: 'u7', adopted: true });
    expect(client.updates).toEqual([{ id: 'u7', changes: { displayName: 'Ada New', active: true } }]);
    expect(await state.getLink('idp-new')).toBe('u7');
  });
});

describe('a create whose caller writes the link with the outcome', () => {
  it('hands the link over instead of writing it, and writes it itself when no caller takes it', async () => {
    const created: TvUser = { id: 'u9', userName: 'ada@corp.example', email: 'ada@corp.example', displayName: 'Ada New', active: true };
    const client: UserWriter = {
      findUserByEmail: async () => undefined,
      createUser: async () => created,
      updateUser: async () => created,
    };
    const state = new MemorySyncState();
    const deferredLinks: [string, string][] = [];
    const outcome = await applyUserOperation(op, { client, state, nowMs: () => 1, deferredLinks });
    expect(outcome).toMatchObject({ status: 'applied', tvUserId: 'u9' });
    expect(deferredLinks).toEqual([['idp-new', 'u9']]);
    // Handed over: not written here.
    expect((await state.loadLinks()).has('idp-new')).toBe(false);

    await applyUserOperation(op, { client, state, nowMs: () => 1 });
    expect((await state.loadLinks()).get('idp-new')).toBe('u9');
  });
});
