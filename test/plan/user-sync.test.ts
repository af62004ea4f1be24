import { describe, expect, it } from 'vitest';
import type { DirectoryUser, UserLookup } from '../../src/model/directory.js';
import type { TvGroup, TvUser } from '../../src/model/teamviewer.js';
import { planMemberships, planUserSync, type RemovalWindow, type UserSyncInput } from '../../src/plan/user-sync.js';

const threshold = { maxCount: 3, maxPercent: 20, minCountForPercent: 5 };
const window: RemovalWindow = { recent: 0, managed: 100, threshold, windowMs: 3_600_000 };
const policy = { protect: ['boss@corp.example'], tokenOwnerEmail: 'owner@corp.example', threshold, outsideCompanyRetryMs: 86_400_000 };

const ada: DirectoryUser = { id: 'idp-ada', email: 'Ada@corp.example', givenName: 'Ada', familyName: 'Lovelace', active: true };
const tvAda: TvUser = { id: 'u1', userName: 'ada@corp.example', email: 'ada@corp.example', displayName: 'Ada Lovelace', active: true };

function inScope(user: DirectoryUser = ada, groups: { id: string; name: string }[] = []): UserLookup {
  return { status: 'in-scope', user, groups, groupsComplete: true, why: 'assigned to the app' };
}

function input(over: Partial<UserSyncInput>): UserSyncInput {
  return { ref: 'idp-ada', lookup: inScope(), sourceId: 'idp-ada', nowMs: 1_000_000, policy, deactivations: window, ...over };
}

describe('planUserSync', () => {
  it('creates a new person in scope, with the create-only fields', () => {
    const plan = planUserSync(input({ policy: { ...policy, ssoCustomerId: 'sso-1' }, lookup: inScope({ ...ada, preferredLanguage: 'de' }) }));
    expect(plan.operation).toMatchObject({
      kind: 'createUser',
      email: 'Ada@corp.example',
      user: { userName: 'Ada@corp.example', displayName: 'Ada Lovelace', active: true, ssoCustomerId: 'sso-1', preferredLanguage: 'de' },
    });
    expect(plan.steps.map((s) => s.step)).toEqual(['idp', 'scope', 'link', 'mapping', 'teamviewer', 'decision']);
    expect(plan.steps.at(-1)?.detail).toMatch(/create Ada@corp.example/);
  });

  it('takes over the TeamViewer user with the same address (any case) and links it', () => {
    const plan = planUserSync(input({ byEmail: { ...tvAda, displayName: 'A. Lovelace' } }));
    expect(plan.links).toEqual([{ action: 'set', sourceId: 'idp-ada', tvUserId: 'u1', reason: 'matched-by-email' }]);
    expect(plan.operation).toMatchObject({ kind: 'updateUser', changes: { displayName: 'Ada Lovelace' } });
  });

  it('does not take over an address another IdP user in scope is linked to; takes it from one who is gone, as the cycle does', () => {
    const plan = planUserSync(input({ byEmail: tvAda, byEmailHolders: [{ sourceId: 'idp-other', inScope: true }] }));
    expect(plan.operation).toBeUndefined();
    expect(plan.skipped?.reason).toBe('email-held-by-other-user');
    const relinked = planUserSync(input({ byEmail: { ...tvAda, displayName: 'A. L.' }, byEmailHolders: [{ sourceId: 'idp-old', inScope: false }] }));
    expect(relinked.links).toEqual([
      { action: 'drop', sourceId: 'idp-old', tvUserId: 'u1', reason: 'relinked' },
      { action: 'set', sourceId: 'idp-ada', tvUserId: 'u1', reason: 'matched-by-email' },
    ]);
    expect(relinked.operation?.kind).toBe('updateUser');
    // A deactivated one is a recycled address: held for a person, not taken over.
    const recycled = planUserSync(input({ byEmail: { ...tvAda, active: false }, byEmailHolders: [{ sourceId: 'idp-old', inScope: false }] }));
    expect(recycled.skipped?.reason).toBe('recycled-address');
  });

  it('does not deactivate a TeamViewer user whose address an IdP user in scope with another id now holds (a rehire, an id change)', () => {
    const plan = planUserSync(input({ lookup: { status: 'not-found', why: '404' }, linked: { tvUserId: 'u1', tv: tvAda }, addressHeldBy: 'idp-new' }));
    expect(plan.operation).toBeUndefined();
    expect(plan.keepMemberships).toBe(true);
    expect(plan.steps.at(-1)?.detail).toMatch(/not deactivated: .* now belongs to IdP user idp-new/);
  });

  it('creates neither of two IdP users with one address, as the cycle', () => {
    const plan = planUserSync(input({ duplicateOf: 'idp-twin' }));
    expect(plan.operation).toBeUndefined();
    expect(plan.skipped?.reason).toBe('duplicate-email');
  });

  it('deactivates a person disabled in the IdP, and one who left the scope or the IdP', () => {
    const disabled = planUserSync(input({ lookup: inScope({ ...ada, active: false }), linked: { tvUserId: 'u1', tv: tvAda } }));
    expect(disabled.operation).toMatchObject({ kind: 'deactivateUser', reason: 'disabled-in-idp', tvUserId: 'u1' });
    const out = planUserSync(input({ lookup: { status: 'out-of-scope', user: ada, why: 'not assigned' }, linked: { tvUserId: 'u1', tv: tvAda } }));
    expect(out.operation).toMatchObject({ kind: 'deactivateUser', reason: 'removed-from-scope', message: expect.stringMatching(/no longer in scope/) });
    expect(out.wantedGroups).toEqual([]);
    const gone = planUserSync(input({ lookup: { status: 'not-found', why: '404' }, linked: { tvUserId: 'u1', tv: tvAda } }));
    expect(gone.operation).toMatchObject({ kind: 'deactivateUser', message: expect.stringMatching(/no longer exists/) });
  });

  it('never deactivates a user this sync does not manage, nor one already deactivated', () => {
    expect(planUserSync(input({ lookup: { status: 'out-of-scope', user: ada, why: 'x' }, byEmail: tvAda })).operation).toBeUndefined();
    const already = planUserSync(input({ lookup: { status: 'not-found', why: '404' }, linked: { tvUserId: 'u1', tv: { ...tvAda, active: false } } }));
    expect(already.operation).toBeUndefined();
    expect(already.steps.at(-1)?.detail).toMatch(/already deactivated/);
  });

  it('reactivates a person enabled again', () => {
    const plan = planUserSync(input({ linked: { tvUserId: 'u1', tv: { ...tvAda, active: false } } }));
    expect(plan.operation).toMatchObject({ kind: 'reactivateUser', reason: 'enabled-in-idp' });
  });

  it('keeps the protect list and the token owner active, and their memberships', () => {
    const boss = { ...tvAda, id: 'u9', email: 'BOSS@corp.example', userName: 'BOSS@corp.example' };
    const plan = planUserSync(input({ lookup: { status: 'not-found', why: '404' }, linked: { tvUserId: 'u9', tv: boss } }));
    expect(plan.operation).toBeUndefined();
    expect(plan.skipped?.reason).toBe('protected');
    expect(plan.keepMemberships).toBe(true);
    const owner = { ...tvAda, id: 'u8', email: 'owner@corp.example', userName: 'owner@corp.example' };
    expect(planUserSync(input({ lookup: { status: 'not-found', why: '404' }, linked: { tvUserId: 'u8', tv: owner } })).skipped?.message).toMatch(
      /owner of the TeamViewer token/,
    );
  });

  it('never removes a protected user or the token owner from a group, even one who stays in scope', () => {
    const boss = { ...tvAda, id: 'u9', email: 'boss@corp.example', userName: 'boss@corp.example' };
    const plan = planUserSync(input({ lookup: inScope({ ...ada, email: 'boss@corp.example' }), linked: { tvUserId: 'u9', tv: boss } }));
    expect(plan.keepMemberships).toBe(true);
    expect(planUserSync(input({ linked: { tvUserId: 'u1', tv: tvAda } })).keepMemberships).toBe(false);
  });

  it('holds a deactivation over the sliding-window threshold, unless a person approved it', () => {
    const busy = { ...window, recent: 3 };
    const held = planUserSync(input({ lookup: { status: 'not-found', why: '404' }, linked: { tvUserId: 'u1', tv: tvAda }, deactivations: busy }));
    expect(held.operation).toBeUndefined();
    expect(held.held).toMatchObject({ kind: 'deactivateUser', tvUserId: 'u1' });
    expect(held.steps.at(-1)?.detail).toMatch(/held for approval: it would be deactivation 4 within 1 h/);
    const approved = planUserSync(
      input({
        lookup: { status: 'not-found', why: '404' },
        linked: { tvUserId: 'u1', tv: tvAda },
        deactivations: busy,
        policy: { ...policy, approvedDeactivations: new Set(['u1']) },
      }),
    );
    expect(approved.operation?.kind).toBe('deactivateUser');
    // By share: 2 earlier of 10 managed is 30% with this one, over 20% only above 5 removals.
    const share = planUserSync(
      input({ lookup: inScope({ ...ada, active: false }), linked: { tvUserId: 'u1', tv: tvAda }, deactivations: { ...window, recent: 2, managed: 10 } }),
    );
    expect(share.operation?.kind).toBe('deactivateUser');
  });

  it('keeps a rename when the deactivation is held', () => {
    const plan = planUserSync(
      input({
        lookup: inScope({ ...ada, givenName: 'Augusta', active: false }),
        linked: { tvUserId: 'u1', tv: tvAda },
        deactivations: { ...window, recent: 9 },
      }),
    );
    expect(plan.held?.kind).toBe('deactivateUser');
    expect(plan.operation).toMatchObject({ kind: 'updateUser', changes: { displayName: 'Augusta Lovelace' } });
  });

  it('does not take an e-mail change, nor create a second user', () => {
    const plan = planUserSync(input({ lookup: inScope({ ...ada, email: 'ada.l@corp.example' }), linked: { tvUserId: 'u1', tv: tvAda } }));
    expect(plan.skipped?.reason).toBe('email-change-unsupported');
    expect(plan.operation).toBeUndefined();
  });

  it('skips a record that cannot be mapped, keeping what TeamViewer has', () => {
    const plan = planUserSync(input({ lookup: inScope({ id: 'idp-x', active: true, givenName: 'X' }), linked: { tvUserId: 'u1', tv: tvAda } }));
    expect(plan.skipped?.reason).toBe('no-email');
    expect(plan.operation).toBeUndefined();
    expect(plan.keepMemberships).toBe(true);
  });

  it('drops a link whose TeamViewer user is gone, and creates the person again', () => {
    const plan = planUserSync(input({ linked: { tvUserId: 'u-gone' } }));
    expect(plan.links).toEqual([{ action: 'drop', sourceId: 'idp-ada', tvUserId: 'u-gone', reason: 'teamviewer-user-gone' }]);
    expect(plan.operation?.kind).toBe('createUser');
  });

  it('waits before creating an address owned outside the company', () => {
    const plan = planUserSync(input({ outsideCompany: { atMs: 999_000, message: 'taken' } }));
    expect(plan.skipped?.reason).toBe('owned-outside-company');
  });

  describe("recycled addresses (the cycle's rule)", () => {
    const oldAda: TvUser = { ...tvAda, displayName: 'Ada Old', active: false };
    const record = { sourceId: 'idp-old-ada', atMs: Date.parse('2025-03-01T10:00:00.000Z') };

    it('holds a new IdP id matching a deactivated user tvsync deactivated for another id: no reactivation, no link, no memberships', () => {
      const plan = planUserSync(input({ byEmail: oldAda, byEmailDeactivated: record, lookup: inScope(ada, [{ id: 'g1', name: 'Sales' }]) }));
      expect(plan.operation).toBeUndefined();
      expect(plan.links).toEqual([]);
      expect(plan.tvUserId).toBeUndefined();
      expect(plan.keepMemberships).toBe(true);
      expect(plan.skipped).toMatchObject({ reason: 'recycled-address', sourceId: 'idp-ada', tvUserId: 'u1' });
      expect(plan.skipped?.message).toContain('belonged to IdP user idp-old-ada; tvsync deactivated it on 2025-03-01T10:00:00.000Z');
      expect(plan.steps.at(-1)?.detail).toMatch(/recycled address/);
    });

    it('holds one still linked to the old IdP id as recycled, not only as "left to the cycle"', () => {
      const plan = planUserSync(input({ byEmail: oldAda, byEmailHolders: [{ sourceId: 'idp-old-ada', inScope: false }] }));
      expect(plan.operation).toBeUndefined();
      expect(plan.skipped?.reason).toBe('recycled-address');
    });

    it('is not recycled when the TeamViewer user is active, or the same IdP id comes back', () => {
      expect(planUserSync(input({ byEmail: tvAda, byEmailDeactivated: record })).links).toMatchObject([{ action: 'set', tvUserId: 'u1' }]);
      const back = planUserSync(input({ byEmail: oldAda, byEmailDeactivated: { ...record, sourceId: 'idp-ada' } }));
      expect(back.skipped).toBeUndefined();
      expect(back.operation).toMatchObject({ kind: 'reactivateUser', tvUserId: 'u1' });
    });

    it('reactivates and links under the policy, or once approved (which the plan reports using)', () => {
      const byPolicy = planUserSync(input({ byEmail: oldAda, byEmailDeactivated: record, policy: { ...policy, recycledAddresses: 'reactivate' } }));
      expect(byPolicy.operation).toMatchObject({ kind: 'reactivateUser', tvUserId: 'u1' });
      expect(byPolicy.links).toContainEqual(expect.objectContaining({ action: 'set', sourceId: 'idp-ada', tvUserId: 'u1' }));
      expect(byPolicy.recycled).toEqual({ tvUserId: 'u1', released: 'policy' });
      const approved = planUserSync(input({ byEmail: oldAda, byEmailDeactivated: record, policy: { ...policy, approvedRecycled: new Set(['u1']) } }));
      expect(approved.operation?.message).toMatch(/recycled address approved/);
      expect(approved.recycled).toEqual({ tvUserId: 'u1', released: 'approved' });
    });
  });
});

describe('planMemberships', () => {
  const groups: TvGroup[] = [
    { id: 'g1', displayName: 'Sales', memberIds: [] },
    { id: 'g2', displayName: 'Ops', memberIds: ['u1', 'u2'] },
    { id: 'g3', displayName: 'Unmanaged', memberIds: ['u1'] },
  ];
  const links = new Map([
    ['idp-sales', 'g1'],
    ['idp-ops', 'g2'],
  ]);
  const base = {
    tvUserId: 'u1',
    email: 'ada@corp.example',
    wanted: [{ id: 'idp-sales', name: 'Sales' }],
    groupsComplete: true,
    groupLinks: links,
    teamviewerGroups: groups,
    keepMemberships: false,
    removals: { ...window, threshold: { maxCount: 10, maxPercent: 20, minCountForPercent: 10 } },
  };

  it('adds the person to managed groups they joined and removes them from those they left; unmanaged groups are never touched', () => {
    const plan = planMemberships(base);
    expect(plan.operations.map((op) => [op.kind, op.tvGroupId, op.memberIds])).toEqual([
      ['addGroupMembers', 'g1', ['u1']],
      ['removeGroupMembers', 'g2', ['u1']],
    ]);
    expect(plan.steps[0]?.detail).toBe('1 group in scope, 1 to join, 1 to leave');
  });

  it('leaves groups TeamViewer does not have yet to the cycle', () => {
    const plan = planMemberships({
      ...base,
      wanted: [
        { id: 'idp-new', name: 'New' },
        { id: 'idp-ops', name: 'Ops' },
      ],
    });
    expect(plan.operations).toEqual([]);
    expect(plan.waitingForCycle).toEqual([{ id: 'idp-new', name: 'New' }]);
  });

  it('removes nothing when the memberships are not known whole or must stay', () => {
    expect(planMemberships({ ...base, groupsComplete: false }).operations.map((op) => op.kind)).toEqual(['addGroupMembers']);
    expect(planMemberships({ ...base, groupsComplete: false }).skipped[0]?.reason).toBe('source-read-incomplete');
    expect(planMemberships({ ...base, keepMemberships: true }).skipped[0]?.reason).toBe('member-kept');
  });

  it('holds removals over the sliding-window threshold, unless approved for that group', () => {
    const busy = { ...base.removals, recent: 10 };
    const held = planMemberships({ ...base, removals: busy });
    expect(held.operations.map((op) => op.kind)).toEqual(['addGroupMembers']);
    expect(held.held).toMatchObject([{ tvGroupId: 'g2', displayName: 'Ops' }]);
    const approved = planMemberships({ ...base, removals: busy, approvedRemovals: new Map([['g2', 1]]) });
    expect(approved.operations.map((op) => op.kind)).toEqual(['addGroupMembers', 'removeGroupMembers']);
  });

  it('removes a person who left the scope from every managed group', () => {
    const plan = planMemberships({ ...base, wanted: [] });
    expect(plan.operations.map((op) => [op.kind, op.tvGroupId])).toEqual([['removeGroupMembers', 'g2']]);
  });
});
