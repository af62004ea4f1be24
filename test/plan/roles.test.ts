import { describe, expect, it } from 'vitest';
import { computeRolePlan, rolesToRead, type RolePlanInput } from '../../src/plan/roles.js';

const THRESHOLD = { maxCount: 500, maxPercent: 20, minCountForPercent: 10 };
const roles = [
  { id: 'r-sup', name: 'Support' },
  { id: 'r-adm', name: 'Admins' },
];

function input(extra: Partial<RolePlanInput> = {}): RolePlanInput {
  return {
    mappings: [{ idpGroup: 'g1', role: 'support', assign: 'accounts' }],
    roles,
    groups: [{ id: 'g1', name: 'Helpdesk', memberIds: ['a', 'b', 'owner'] }],
    groupsSynced: true,
    groupLinks: new Map([['g1', '7']]),
    userLinks: new Map([
      ['a', 'u1'],
      ['b', 'u2'],
      ['owner', 'u9'],
      ['c', 'u3'],
    ]),
    current: new Map(),
    made: [],
    tokenOwnerTvUserId: 'u9',
    protectedTvUserIds: new Set(['u9', 'u3']),
    removalsBlocked: undefined,
    threshold: THRESHOLD,
    ...extra,
  };
}

describe('role plan', () => {
  it('gives no role that could reach the token owner: none when the owner is unknown, none through a group the owner is in', () => {
    const unknown = input({ tokenOwnerTvUserId: undefined });
    expect(computeRolePlan(unknown).operations).toEqual([]);
    expect(computeRolePlan(unknown).skipped.map((s) => s.reason)).toEqual(['token-owner']);
    const viaGroup = computeRolePlan(input({ mappings: [{ idpGroup: 'g1', role: 'Support', assign: 'usergroup' }] }));
    expect(viaGroup.operations).toEqual([]);
    expect(viaGroup.skipped[0]?.message).toMatch(/owner of the TeamViewer token is a member/);
    const withoutOwner = computeRolePlan(
      input({ mappings: [{ idpGroup: 'g1', role: 'Support', assign: 'usergroup' }], groups: [{ id: 'g1', name: 'Helpdesk', memberIds: ['a', 'b'] }] }),
    );
    expect(withoutOwner.operations).toEqual([expect.objectContaining({ kind: 'assignRole', target: 'usergroup' })]);
  });

  it('doubts a role list with no role at all: the records of what tvsync assigned stay', () => {
    const made = [{ roleId: 'r-sup', target: 'account' as const, id: 'u2' }];
    expect(computeRolePlan(input({ roles: [], made })).forget ?? []).toEqual([]);
    expect(computeRolePlan(input({ roles: [{ id: 'r-adm', name: 'Admins' }], made })).forget).toEqual(made);
  });

  it('resolves a role by name ignoring case, never assigns the token owner, and reports roles TeamViewer lacks', () => {
    const plan = computeRolePlan(input({ mappings: [...input().mappings, { idpGroup: 'g1', role: 'Gone', assign: 'usergroup' }] }));
    expect(plan.operations).toEqual([expect.objectContaining({ kind: 'assignRole', roleId: 'r-sup', target: 'accounts', userIds: ['u1', 'u2'] })]);
    expect(plan.skipped.map((s) => s.reason).sort()).toEqual(['role-not-found', 'token-owner']);
  });

  it('takes back only what tvsync made, never from protected users; roles nobody named are not read', () => {
    const current = new Map([['r-sup', { groups: new Set<string>(), accounts: new Set(['u1', 'u2', 'u3', 'u4']) }]]);
    const made = [
      { roleId: 'r-sup', target: 'account' as const, id: 'u2' },
      { roleId: 'r-sup', target: 'account' as const, id: 'u3' },
    ];
    const plan = computeRolePlan(input({ groups: [{ id: 'g1', name: 'Helpdesk', memberIds: ['a'] }], current, made }));
    expect(plan.operations).toEqual([expect.objectContaining({ kind: 'unassignRole', userIds: ['u2'] })]);
    expect(plan.skipped).toEqual([expect.objectContaining({ reason: 'protected', tvUserId: 'u3' })]);
    expect(rolesToRead(input().mappings, roles, []).map((r) => r.id)).toEqual(['r-sup']);
  });

  it('blocks every removal under the read guard, and holds them over the member-removal threshold', () => {
    const ids = Array.from({ length: 20 }, (_, i) => `u${100 + i}`);
    const current = new Map([['r-sup', { groups: new Set<string>(), accounts: new Set(ids) }]]);
    const made = ids.map((id) => ({ roleId: 'r-sup', target: 'account' as const, id }));
    const blocked = computeRolePlan(
      input({ current, made, removalsBlocked: { reason: 'source-empty', cause: 'the IdP returned no user in scope', message: 'x' } }),
    );
    expect(blocked.operations.filter((op) => op.kind === 'unassignRole')).toEqual([]);
    expect(blocked.removalsBlocked?.reason).toBe('source-empty');
    const held = computeRolePlan(input({ current, made: [...made, ...ids.map((id) => ({ roleId: 'r-sup', target: 'account' as const, id: `${id}x` }))] }));
    expect(held.held).toHaveLength(1);
    expect(held.operations.filter((op) => op.kind === 'unassignRole')).toEqual([]);
  });

  it('batches accounts in calls of at most 100', () => {
    const members = Array.from({ length: 250 }, (_, i) => `m${i}`);
    const plan = computeRolePlan(
      input({ groups: [{ id: 'g1', name: 'All', memberIds: members }], userLinks: new Map(members.map((m, i) => [m, `u${1000 + i}`])) }),
    );
    expect(plan.operations.map((op) => op.userIds?.length)).toEqual([100, 100, 50]);
  });
});
