import { describe, expect, it } from 'vitest';
import { computePlan, type PlanInput } from '../../src/plan/diff.js';
import type { DirectoryUser } from '../../src/model/directory.js';
import type { TvUser } from '../../src/model/teamviewer.js';
import type { PlanPolicy } from '../../src/plan/types.js';
import { recycledAddress } from '../../src/plan/recycled.js';

const policy: PlanPolicy = {
  protect: [],
  threshold: { maxCount: 50, maxPercent: 20, minCountForPercent: 5 },
  outsideCompanyRetryMs: 24 * 3600_000,
};
const DEACTIVATED_AT = Date.parse('2025-03-01T10:00:00.000Z');

function idp(id: string, email: string, extra: Partial<DirectoryUser> = {}): DirectoryUser {
  return { id, email, displayName: `Name ${id}`, active: true, ...extra };
}
const oldSam: TvUser = { id: 'u7', userName: 'sam@x.test', email: 'sam@x.test', displayName: 'Sam Old', active: false };

function input(over: Partial<PlanInput> & { users?: DirectoryUser[] }): PlanInput {
  const { users, ...rest } = over;
  return {
    directory: { users: users ?? [], complete: true },
    teamviewer: [oldSam],
    links: new Map(),
    outsideCompany: new Map(),
    nowMs: DEACTIVATED_AT + 90 * 86_400_000,
    policy,
    ...rest,
  };
}

describe('recycled addresses in the cycle plan', () => {
  it('holds a new IdP id matching a deactivated TeamViewer user still linked to the old IdP id: no reactivation, no relink', () => {
    const plan = computePlan(input({ users: [idp('new-sam', 'Sam@x.test')], links: new Map([['old-sam', 'u7']]) }));
    expect(plan.operations).toEqual([]);
    expect(plan.links).toEqual([]);
    expect(plan.skipped).toEqual([expect.objectContaining({ reason: 'recycled-address', sourceId: 'new-sam', email: 'Sam@x.test', tvUserId: 'u7' })]);
    expect(plan.skipped[0]?.message).toMatch(/belonged to IdP user old-sam/);
    expect(plan.skipped[0]?.message).toMatch(/held for approval/);
    expect(plan.summary.skipped['recycled-address']).toBe(1);
    expect(plan.notices.join(' ')).toMatch(/recycled address/);
    // The old link stays, and the deactivated user is not touched again.
    expect(plan.summary.operations.deactivateUser).toBe(0);
  });

  it("holds it through tvsync's record of the deactivation after the link was dropped, naming the old id and when", () => {
    const plan = computePlan(
      input({ users: [idp('new-sam', 'sam@x.test')], deactivatedByTvsync: new Map([['u7', { sourceId: 'old-sam', atMs: DEACTIVATED_AT }]]) }),
    );
    expect(plan.operations).toEqual([]);
    expect(plan.links).toEqual([]);
    expect(plan.skipped).toMatchObject([{ reason: 'recycled-address', tvUserId: 'u7' }]);
    expect(plan.skipped[0]?.message).toContain('belonged to IdP user old-sam; tvsync deactivated it on 2025-03-01T10:00:00.000Z');
  });

  it('is not a recycled address when the TeamViewer user is active: matched and linked as before', () => {
    const plan = computePlan(
      input({
        users: [idp('new-sam', 'sam@x.test')],
        teamviewer: [{ ...oldSam, active: true, displayName: 'Name new-sam' }],
        deactivatedByTvsync: new Map([['u7', { sourceId: 'old-sam', atMs: DEACTIVATED_AT }]]),
      }),
    );
    expect(plan.skipped).toEqual([]);
    expect(plan.links).toEqual([{ action: 'set', sourceId: 'new-sam', tvUserId: 'u7', reason: 'matched-by-email' }]);
  });

  it('is not a recycled address when the same IdP id comes back: reactivated', () => {
    const record = new Map([['u7', { sourceId: 'sam', atMs: DEACTIVATED_AT }]]);
    // Linked still: found through the link.
    const linked = computePlan(input({ users: [idp('sam', 'sam@x.test')], links: new Map([['sam', 'u7']]), deactivatedByTvsync: record }));
    expect(linked.operations).toMatchObject([{ kind: 'reactivateUser', tvUserId: 'u7', reason: 'enabled-in-idp' }]);
    // Link lost, tvsync's record names the same id: matched by e-mail and reactivated.
    const unlinked = computePlan(input({ users: [idp('sam', 'sam@x.test')], deactivatedByTvsync: record }));
    expect(unlinked.skipped).toEqual([]);
    expect(unlinked.operations).toMatchObject([{ kind: 'reactivateUser', tvUserId: 'u7' }]);
    // A deactivated user tvsync knows nothing about (no link, no record) is taken over as before.
    const unknown = computePlan(input({ users: [idp('new-sam', 'sam@x.test')] }));
    expect(unknown.operations).toMatchObject([{ kind: 'reactivateUser', tvUserId: 'u7' }]);
  });

  it('reactivates and relinks under policy.recycledAddresses: reactivate, saying whose it was', () => {
    const plan = computePlan(
      input({
        users: [idp('new-sam', 'sam@x.test')],
        links: new Map([['old-sam', 'u7']]),
        deactivatedByTvsync: new Map([['u7', { sourceId: 'old-sam', atMs: DEACTIVATED_AT }]]),
        policy: { ...policy, recycledAddresses: 'reactivate' },
      }),
    );
    expect(plan.skipped).toEqual([]);
    expect(plan.links).toEqual([
      { action: 'set', sourceId: 'new-sam', tvUserId: 'u7', reason: 'matched-by-email' },
      { action: 'drop', sourceId: 'old-sam', tvUserId: 'u7', reason: 'relinked' },
    ]);
    expect(plan.operations).toMatchObject([{ kind: 'reactivateUser', tvUserId: 'u7', changes: { active: true, displayName: 'Name new-sam' } }]);
    expect(plan.operations[0]?.message).toMatch(/recycled address \(policy.recycledAddresses: reactivate\).*old-sam/);
  });

  it('reactivates and relinks one a person approved (by TeamViewer user id); others stay held', () => {
    const otherOld: TvUser = { id: 'u8', userName: 'kim@x.test', email: 'kim@x.test', displayName: 'Kim Old', active: false };
    const plan = computePlan(
      input({
        users: [idp('new-sam', 'sam@x.test'), idp('new-kim', 'kim@x.test')],
        teamviewer: [oldSam, otherOld],
        links: new Map([
          ['old-sam', 'u7'],
          ['old-kim', 'u8'],
        ]),
        policy: { ...policy, approvedRecycled: new Set(['u7']) },
      }),
    );
    expect(plan.operations).toMatchObject([{ kind: 'reactivateUser', tvUserId: 'u7', sourceId: 'new-sam' }]);
    expect(plan.operations[0]?.message).toMatch(/recycled address approved/);
    expect(plan.links).toContainEqual({ action: 'set', sourceId: 'new-sam', tvUserId: 'u7', reason: 'matched-by-email' });
    expect(plan.skipped).toMatchObject([{ reason: 'recycled-address', tvUserId: 'u8', sourceId: 'new-kim' }]);
  });

  it('still leaves an address whose holder is present in the IdP to that holder', () => {
    const plan = computePlan(
      input({ users: [idp('old-sam', 'sam.old@x.test', { active: false }), idp('new-sam', 'sam@x.test')], links: new Map([['old-sam', 'u7']]) }),
    );
    expect(plan.skipped.find((s) => s.sourceId === 'new-sam')).toMatchObject({ reason: 'email-held-by-other-user' });
  });
});

describe('recycledAddress', () => {
  it('holds a disabled newcomer too: no link, so no later reactivation through it', () => {
    const verdict = recycledAddress({ sourceId: 'b', email: 'sam@x.test', tv: oldSam, holders: ['a'] }, {});
    expect(verdict).toMatchObject({ recycled: true, held: { reason: 'recycled-address' } });
    expect(recycledAddress({ sourceId: 'b', email: 'sam@x.test', tv: oldSam, holders: ['b'] }, {})).toEqual({ recycled: false });
  });
});
