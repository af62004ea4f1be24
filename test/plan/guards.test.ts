import { describe, expect, it } from 'vitest';
import type { DirectoryGroup, DirectoryRead, DirectoryUser } from '../../src/model/directory.js';
import type { TvGroup, TvUser } from '../../src/model/teamviewer.js';
import { computePlan } from '../../src/plan/diff.js';
import { computeGroupPlan } from '../../src/plan/groups.js';
import type { GroupPlan, GroupPlanInput, GroupPlanPolicy } from '../../src/plan/group-types.js';
import { guardGroupRemovals, readFacts, type RemovalBlock } from '../../src/plan/guards.js';
import type { Plan, PlanPolicy } from '../../src/plan/types.js';

/**
 * The read guard across both plans, as a cycle runs them: the user plan, then the group plan with
 * the guard decided from the same read and the user plan's block.
 */

const userPolicy: PlanPolicy = { protect: [], threshold: { maxCount: 50, maxPercent: 20, minCountForPercent: 5 }, outsideCompanyRetryMs: 86_400_000 };
const groupPolicy: GroupPlanPolicy = {
  batchSize: 100,
  onIdpDelete: 'delete',
  threshold: { maxCount: 50, maxPercent: 20, minCountForPercent: 5 },
  deactivationsThisCycle: 0,
  memberRemovalThreshold: { maxCount: 500, maxPercent: 20, minCountForPercent: 10 },
};

const ids = ['1', '2', '3', '4', '5', '6'];
const user = (id: string): DirectoryUser => ({ id, email: `p${id}@x.test`, displayName: `P ${id}`, active: true });
const tvUser = (id: string): TvUser => ({ id: `u${id}`, userName: `p${id}@x.test`, email: `p${id}@x.test`, displayName: `P ${id}`, active: true });
const group = (id: string, name: string, members: string[]): DirectoryGroup => ({ id, name, memberIds: members });

/** Three managed groups (fewer than the deletion threshold's minCountForPercent): Sales 1-3, Ops 4-5, Dev 6. */
const goodGroups = [group('g1', 'Sales', ['1', '2', '3']), group('g2', 'Ops', ['4', '5']), group('g3', 'Dev', ['6'])];
const tvGroups: TvGroup[] = [
  { id: 't1', displayName: 'Sales', memberIds: ['u1', 'u2', 'u3'] },
  { id: 't2', displayName: 'Ops', memberIds: ['u4', 'u5'] },
  { id: 't3', displayName: 'Dev', memberIds: ['u6'] },
];

interface Scenario {
  read: Partial<DirectoryRead>;
  teamviewerUsers?: TvUser[];
  teamviewerGroups?: TvGroup[];
  /** A block the runtime adds to the user plan's read (the token owner could not be looked up). */
  userReadOverride?: Partial<DirectoryRead>;
  policy?: Partial<GroupPlanPolicy>;
}

function run(scenario: Scenario): { users: Plan; groups: GroupPlan; groupInput: GroupPlanInput } {
  const read: DirectoryRead = { users: ids.map(user), groups: goodGroups, complete: true, issues: [], ...scenario.read };
  const userLinks = new Map(ids.map((id) => [id, `u${id}`]));
  const groupLinks = new Map([
    ['g1', 't1'],
    ['g2', 't2'],
    ['g3', 't3'],
  ]);
  const teamviewerGroups = scenario.teamviewerGroups ?? tvGroups;
  const users = computePlan({
    directory: { ...read, ...scenario.userReadOverride },
    teamviewer: scenario.teamviewerUsers ?? ids.map(tvUser),
    links: userLinks,
    outsideCompany: new Map(),
    nowMs: 0,
    policy: userPolicy,
  });
  const usersBlocked = users.deactivationsBlocked;
  const removalsBlocked = guardGroupRemovals(readFacts(read), {
    ...(usersBlocked ? { usersBlocked } : {}),
    groupLinks: groupLinks.size,
    teamviewerGroups: teamviewerGroups.length,
  });
  const keepMembers = new Set(users.skipped.flatMap((s) => (s.tvUserId && s.reason === 'source-read-incomplete' ? [s.tvUserId] : [])));
  const inRead = new Set(read.groups.map((g) => g.id));
  const groupInput: GroupPlanInput = {
    groups: read.groups,
    removalsBlocked,
    teamviewerGroups,
    groupLinks,
    userLinks,
    teamviewerUserIds: new Set(userLinks.values()),
    userProblems: new Map(),
    // What the file source says of every group missing from its export.
    goneGroups: new Map([...groupLinks.keys()].filter((id) => !inRead.has(id)).map((id) => [id, 'deleted' as const])),
    keepMembers,
    policy: { ...groupPolicy, ...scenario.policy },
  };
  return { users, groups: computeGroupPlan(groupInput), groupInput };
}

/** Nothing taken away: no deactivation, no member removal, no group deletion, no group unlinked. */
function expectNothingRemoved(result: { users: Plan; groups: GroupPlan }): void {
  expect(result.users.operations.filter((op) => op.kind === 'deactivateUser')).toEqual([]);
  expect(result.groups.operations.filter((op) => op.kind === 'removeGroupMembers' || op.kind === 'deleteGroup')).toEqual([]);
  expect(result.groups.held).toEqual([]);
  expect(result.groups.links.filter((l) => l.action === 'drop')).toEqual([]);
  expect(result.groups.notices.join(' ')).toContain('No group is deleted or unlinked and no member removed this cycle');
}

/** The same group plan without the guard, to show the scenario would otherwise take something away. */
function unguarded(groupInput: GroupPlanInput): GroupPlan {
  return computeGroupPlan({ ...groupInput, removalsBlocked: undefined, keepMembers: new Set() });
}
const removalsOf = (plan: GroupPlan) => plan.operations.filter((op) => op.kind === 'removeGroupMembers' || op.kind === 'deleteGroup').map((op) => op.key);

describe('the read guard covers groups and members', () => {
  it('an empty IdP read deletes none of a few managed groups (the deletion threshold would not trip)', () => {
    const result = run({ read: { users: [], groups: [] } });
    expect(removalsOf(unguarded(result.groupInput))).toEqual(['deleteGroup.g3', 'deleteGroup.g2', 'deleteGroup.g1']);
    expectNothingRemoved(result);
    expect(result.users.deactivationsBlocked?.reason).toBe('source-empty');
    expect(result.groups.removalsBlocked).toMatchObject({ reason: 'source-empty', message: expect.stringContaining('the IdP returned no user in scope') });
    expect(result.groups.skipped.filter((s) => s.reason === 'source-read-incomplete').map((s) => s.sourceGroupId)).toEqual(['g1', 'g2', 'g3']);
  });

  it('a partial IdP read removes no member and deletes no group', () => {
    const result = run({
      read: { users: ['1', '2', '4'].map(user), groups: [group('g1', 'Sales', ['1', '2'])], complete: false, incompleteReason: 'page 2 failed' },
    });
    expect(removalsOf(unguarded(result.groupInput))).toEqual(['removeGroupMembers.g1.0', 'deleteGroup.g3', 'deleteGroup.g2']);
    expectNothingRemoved(result);
    expect(result.groups.removalsBlocked?.reason).toBe('source-read-incomplete');
    expect(result.groups.removalsBlocked?.message).toContain('page 2 failed');
  });

  it('an unreadable user record without an id removes no member (its memberships may be missing)', () => {
    const result = run({
      read: {
        users: ids.filter((id) => id !== '3').map(user),
        groups: [group('g1', 'Sales', ['1', '2']), goodGroups[1]!, goodGroups[2]!],
        issues: [{ kind: 'user', reason: 'no id' }],
      },
    });
    expect(removalsOf(unguarded(result.groupInput))).toEqual(['removeGroupMembers.g1.0']);
    expectNothingRemoved(result);
    expect(result.groups.removalsBlocked).toMatchObject({ reason: 'source-doubtful', message: expect.stringContaining('without a usable id') });
  });

  it.each(['group', 'membership'] as const)('an unreadable %s record removes no member and deletes no group', (kind) => {
    const result = run({ read: { groups: [group('g1', 'Sales', ['1', '2'])], issues: [{ kind, objectId: 'g9', reason: 'malformed' }] } });
    expect(removalsOf(unguarded(result.groupInput))).toHaveLength(3);
    expectNothingRemoved(result);
    expect(result.groups.removalsBlocked?.reason).toBe('source-doubtful');
  });

  it('a read that did not cover the groups removes no member and deletes no group, but users still sync', () => {
    const result = run({
      read: {
        users: ids.slice(0, 5).map(user),
        groups: [group('g1', 'Sales', ['1', '2'])],
        groupsComplete: false,
        groupsIncompleteReason: 'the export has no groups file',
      },
    });
    expect(removalsOf(unguarded(result.groupInput))).toHaveLength(3);
    expectNothingRemoved({ users: { ...result.users, operations: [] }, groups: result.groups });
    // The users part of the read is whole: the user who left is deactivated.
    expect(result.users.operations).toMatchObject([{ kind: 'deactivateUser', tvUserId: 'u6' }]);
    expect(result.groups.removalsBlocked).toMatchObject({
      reason: 'groups-read-incomplete',
      message: expect.stringContaining('the export has no groups file'),
    });
  });

  it('a read with no group while the sync manages groups deletes none', () => {
    const result = run({ read: { groups: [] } });
    expect(removalsOf(unguarded(result.groupInput))).toHaveLength(3);
    expectNothingRemoved(result);
    expect(result.users.deactivationsBlocked).toBeUndefined();
    expect(result.groups.removalsBlocked?.reason).toBe('groups-empty');
  });

  it('whatever blocked deactivations blocks group removals too', () => {
    // The runtime makes the user plan's read incomplete when the token owner could not be looked up.
    const result = run({
      read: { groups: [group('g1', 'Sales', ['1'])] },
      userReadOverride: { complete: false, incompleteReason: 'the owner of the TeamViewer token could not be looked up' },
    });
    expect(removalsOf(unguarded(result.groupInput))).toHaveLength(3);
    expectNothingRemoved(result);
    expect(result.groups.removalsBlocked).toMatchObject({ reason: 'source-read-incomplete', message: expect.stringContaining('token could not be looked up') });
  });

  it('TeamViewer listing no user while the sync manages some deactivates nobody, keeps the links and removes no member', () => {
    const result = run({ read: { users: ids.slice(0, 5).map(user), groups: [group('g1', 'Sales', ['1'])] }, teamviewerUsers: [] });
    expect(removalsOf(unguarded(result.groupInput))).toHaveLength(3);
    expect(result.users.deactivationsBlocked?.reason).toBe('teamviewer-users-empty');
    expect(result.users.links).toEqual([]);
    expectNothingRemoved(result);
    expect(result.groups.removalsBlocked?.reason).toBe('teamviewer-users-empty');
  });

  it('TeamViewer listing no group while the sync manages some neither re-creates nor unlinks them', () => {
    const result = run({ read: { groups: [goodGroups[0]!, goodGroups[1]!] }, teamviewerGroups: [] });
    expect(result.groups.operations).toEqual([]);
    expect(result.groups.links).toEqual([]);
    expect(result.groups.removalsBlocked?.reason).toBe('teamviewer-groups-empty');
    expect(result.groups.skipped.map((s) => [s.reason, s.sourceGroupId])).toEqual([
      ['source-read-incomplete', 'g1'],
      ['source-read-incomplete', 'g2'],
    ]);
    // Without the guard both would be created a second time.
    expect(unguarded(result.groupInput).operations.map((op) => op.kind)).toEqual(['createGroup', 'createGroup']);
  });

  it('a good read takes away what left', () => {
    const result = run({ read: { groups: [group('g1', 'Sales', ['1', '2']), goodGroups[1]!] } });
    expect(result.groups.removalsBlocked).toBeUndefined();
    expect(removalsOf(result.groups)).toEqual(['removeGroupMembers.g1.0', 'deleteGroup.g3']);
  });
});

describe('the member-removal threshold', () => {
  const members = (prefix: string, count: number) => Array.from({ length: count }, (_, i) => `${prefix}${i}`);
  /** Two managed groups of 20 (40 memberships); the IdP keeps 8 of each and adds one to B: 24 removals. */
  function scenario(policy: Partial<GroupPlanPolicy>): GroupPlanInput {
    const a = members('a', 20);
    const b = members('b', 21);
    const all = [...a, ...b];
    return {
      groups: [group('gA', 'A', a.slice(0, 8)), group('gB', 'B', [...b.slice(0, 8), 'b20'])],
      removalsBlocked: undefined,
      teamviewerGroups: [
        { id: 'tA', displayName: 'A', memberIds: a.map((id) => `u${id}`) },
        { id: 'tB', displayName: 'B', memberIds: b.slice(0, 20).map((id) => `u${id}`) },
      ],
      groupLinks: new Map([
        ['gA', 'tA'],
        ['gB', 'tB'],
      ]),
      userLinks: new Map(all.map((id) => [id, `u${id}`])),
      teamviewerUserIds: new Set(all.map((id) => `u${id}`)),
      userProblems: new Map(),
      goneGroups: new Map(),
      policy: { ...groupPolicy, ...policy },
    };
  }
  const kinds = (plan: GroupPlan) => plan.operations.map((op) => op.key);

  it('holds member removals above the share of managed memberships, per group, while adds run', () => {
    const plan = computeGroupPlan(scenario({}));
    expect(kinds(plan)).toEqual(['addGroupMembers.gB.0']);
    expect(plan.heldMemberRemovals).toEqual([
      { sourceGroupId: 'gA', tvGroupId: 'tA', displayName: 'A', members: 12, message: 'remove 12 members from A: held at the member-removal threshold' },
      { sourceGroupId: 'gB', tvGroupId: 'tB', displayName: 'B', members: 12, message: 'remove 12 members from B: held at the member-removal threshold' },
    ]);
    expect(plan.summary).toMatchObject({ memberRemovalsHeld: 24, membersRemoved: 0, membersAdded: 1 });
    expect(plan.notices).toEqual([
      expect.stringContaining('24 unapproved member removal(s) (60.0% of 40 managed memberships) in 2 group(s) exceed the member-removal threshold'),
    ]);
  });

  it('holds them above the count', () => {
    const plan = computeGroupPlan(scenario({ memberRemovalThreshold: { maxCount: 23, maxPercent: 100, minCountForPercent: 1000 } }));
    expect(plan.heldMemberRemovals).toHaveLength(2);
    expect(computeGroupPlan(scenario({ memberRemovalThreshold: { maxCount: 24, maxPercent: 100, minCountForPercent: 1000 } })).heldMemberRemovals).toEqual([]);
  });

  it('lets the approved groups through and holds the rest', () => {
    const plan = computeGroupPlan(scenario({ approvedMemberRemovals: new Map([['tA', 12]]) }));
    expect(kinds(plan)).toEqual(['addGroupMembers.gB.0', 'removeGroupMembers.gA.0']);
    expect(plan.heldMemberRemovals.map((h) => h.tvGroupId)).toEqual(['tB']);
    const both = computeGroupPlan(
      scenario({
        approvedMemberRemovals: new Map([
          ['tA', 12],
          ['tB', 12],
        ]),
      }),
    );
    expect(both.heldMemberRemovals).toEqual([]);
    expect(both.summary.membersRemoved).toBe(24);
    expect(both.notices).toEqual([]);
  });

  it('approves no more removals than a person saw held: more in that group are held again', () => {
    // 5 held removals from A were approved; the plan now removes 12 from A.
    const plan = computeGroupPlan(scenario({ approvedMemberRemovals: new Map([['tA', 5]]) }));
    expect(plan.heldMemberRemovals.map((h) => h.tvGroupId)).toEqual(['tA', 'tB']);
    expect(plan.summary.membersRemoved).toBe(0);
  });

  it('lets a handful of removals through however small the company', () => {
    const plan = computeGroupPlan({ ...scenario({}), groups: [group('gA', 'A', members('a', 20).slice(0, 10)), group('gB', 'B', members('b', 20))] });
    expect(plan.heldMemberRemovals).toEqual([]);
    expect(plan.summary.membersRemoved).toBe(10);
  });
});

describe('guard decisions', () => {
  const facts = (over: Partial<ReturnType<typeof readFacts>> = {}) => ({ complete: true, users: 5, groups: 2, doubtful: { users: 0, groups: 0 }, ...over });
  it('allow removals after a good read', () => {
    expect(guardGroupRemovals(facts(), { groupLinks: 2, teamviewerGroups: 2 })).toBeUndefined();
    // No group managed yet: an empty group read is nothing to doubt.
    expect(guardGroupRemovals(facts({ groups: 0 }), { groupLinks: 0, teamviewerGroups: 0 })).toBeUndefined();
  });
  it('carry a block of the user phase with its reason and cause', () => {
    const usersBlocked: RemovalBlock = {
      reason: 'teamviewer-users-empty',
      cause: 'TeamViewer listed no user while this sync manages 3',
      message: 'No user is deactivated this cycle: TeamViewer listed no user while this sync manages 3.',
    };
    expect(guardGroupRemovals(facts(), { usersBlocked, groupLinks: 2, teamviewerGroups: 2 })).toEqual({
      reason: 'teamviewer-users-empty',
      cause: usersBlocked.cause,
      message: 'No group is deleted or unlinked and no member removed this cycle: TeamViewer listed no user while this sync manages 3.',
    });
  });
  it('keep what a stored cycle holds bounded', () => {
    const read = readFacts({ users: [], groups: [], complete: false, incompleteReason: 'x'.repeat(100_000), issues: [] });
    expect(read.incompleteReason!.length).toBeLessThan(600);
  });
});
