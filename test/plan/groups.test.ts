import { describe, expect, it } from 'vitest';
import { computeGroupPlan, screenGroups } from '../../src/plan/groups.js';
import type { GroupOperation, GroupPlanInput, GroupPlanPolicy } from '../../src/plan/group-types.js';
import { guardGroupRemovals } from '../../src/plan/guards.js';
import type { DirectoryGroup } from '../../src/model/directory.js';
import type { TvGroup } from '../../src/model/teamviewer.js';

const policy: GroupPlanPolicy = {
  batchSize: 100,
  onIdpDelete: 'delete',
  threshold: { maxCount: 50, maxPercent: 20, minCountForPercent: 5 },
  deactivationsThisCycle: 0,
  memberRemovalThreshold: { maxCount: 500, maxPercent: 20, minCountForPercent: 10 },
};

/** For tests about something else: no member removal is ever held. */
const anyRemovals = { maxCount: Number.MAX_SAFE_INTEGER, maxPercent: 100, minCountForPercent: Number.MAX_SAFE_INTEGER };

/** The guard's answer for a read that did not cover the whole scope. */
const incomplete = guardGroupRemovals(
  { complete: false, incompleteReason: 'page 3 failed', users: 10, groups: 2, doubtful: { users: 0, groups: 0 } },
  { groupLinks: 2, teamviewerGroups: 2 },
);

function idpGroup(id: string, name: string, memberIds: string[]): DirectoryGroup {
  return { id, name, memberIds };
}
function tvGroup(id: string, displayName: string, memberIds: string[] = []): TvGroup {
  return { id, displayName, memberIds };
}
/** IdP user `x` is TeamViewer user `ux`. */
function tvUser(idpUserId: string): string {
  return `u${idpUserId}`;
}
function range(prefix: string, count: number, from = 0): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}${String(i + from).padStart(5, '0')}`);
}

type InputOverrides = Partial<Omit<GroupPlanInput, 'policy'>> & { policy?: Partial<GroupPlanPolicy>; provisioned?: string[] };

/** `provisioned` lists the IdP users that have a TeamViewer user; the others have none. */
function input(over: InputOverrides): GroupPlanInput {
  const { policy: policyOver, provisioned, ...rest } = over;
  const userLinks = new Map<string, string>();
  const teamviewerUserIds = new Set<string>();
  for (const id of provisioned ?? []) {
    userLinks.set(id, tvUser(id));
    teamviewerUserIds.add(tvUser(id));
  }
  return {
    groups: [],
    removalsBlocked: undefined,
    teamviewerGroups: [],
    groupLinks: new Map(),
    userLinks,
    teamviewerUserIds,
    userProblems: new Map(),
    goneGroups: new Map(),
    policy: { ...policy, ...policyOver },
    ...rest,
  };
}

function kinds(ops: readonly GroupOperation[]): string[] {
  return ops.map((op) => op.kind);
}

describe('creates', () => {
  it('creates an IdP group TeamViewer lacks, with all its members', () => {
    const plan = computeGroupPlan(input({ groups: [idpGroup('g1', 'Support', ['c', 'a', 'b'])], provisioned: ['a', 'b', 'c'] }));
    expect(plan.operations).toEqual([
      {
        kind: 'createGroup',
        key: 'createGroup.g1',
        sourceGroupId: 'g1',
        displayName: 'Support',
        memberIds: ['ua', 'ub', 'uc'],
        members: [
          { tvUserId: 'ua', sourceId: 'a' },
          { tvUserId: 'ub', sourceId: 'b' },
          { tvUserId: 'uc', sourceId: 'c' },
        ],
        message: 'create group Support with 3 members',
      },
    ]);
    expect(plan.links).toEqual([]);
    expect(plan.summary).toMatchObject({ inScope: 1, managed: 0, unchanged: 0, membersAdded: 3, membersRemoved: 0, operations: { createGroup: 1 } });
  });

  it('does not create a group without members, nor one whose members have no TeamViewer user', () => {
    const plan = computeGroupPlan(input({ groups: [idpGroup('g1', 'Empty', []), idpGroup('g2', 'Nobody', ['x'])] }));
    expect(plan.operations).toEqual([]);
    const empty = plan.skipped.filter((s) => s.reason === 'empty-group-not-created');
    expect(empty.map((s) => s.sourceGroupId)).toEqual(['g1', 'g2']);
    expect(empty[0]?.message).toBe('group Empty is not created in TeamViewer: it has no members');
    expect(empty[1]?.message).toContain('none of its 1 member has a TeamViewer user');
    expect(plan.skipped.filter((s) => s.reason === 'member-not-provisioned').map((s) => s.sourceUserId)).toEqual(['x']);
  });

  it('puts every member into the create however many batches the runtime will need', () => {
    const members = range('m', 250);
    const plan = computeGroupPlan(input({ groups: [idpGroup('g1', 'Big', members)], provisioned: members }));
    expect(plan.operations).toHaveLength(1);
    expect(plan.operations[0]).toMatchObject({ kind: 'createGroup', message: 'create group Big with 250 members' });
    expect(plan.operations[0]?.kind === 'createGroup' && plan.operations[0].memberIds).toHaveLength(250);
  });
});

describe('members without a TeamViewer user', () => {
  it('leaves them out, says why, reports each (group, user) once and still creates the group', () => {
    const plan = computeGroupPlan(
      input({
        groups: [idpGroup('g1', 'Support', ['a', 'owned', 'bad', 'owned', 'gone', 'new']), idpGroup('g2', 'Sales', ['owned', 'a'])],
        provisioned: ['a'],
        userLinks: new Map([
          ['a', 'ua'],
          ['gone', 'u-vanished'],
        ]),
        teamviewerUserIds: new Set(['ua']),
        userProblems: new Map([
          ['owned', 'owned-outside-company'],
          ['bad', 'invalid'],
        ]),
      }),
    );
    expect(plan.operations.map((op) => [op.kind, op.sourceGroupId, op.kind === 'createGroup' ? op.memberIds : []])).toEqual([
      ['createGroup', 'g2', ['ua']],
      ['createGroup', 'g1', ['ua']],
    ]);
    const missing = plan.skipped.filter((s) => s.reason === 'member-not-provisioned');
    expect(missing.map((s) => `${s.sourceGroupId}/${s.sourceUserId}`)).toEqual(['g1/bad', 'g1/gone', 'g1/new', 'g1/owned', 'g2/owned']);
    const byUser = new Map(missing.filter((s) => s.sourceGroupId === 'g1').map((s) => [s.sourceUserId, s.message]));
    expect(byUser.get('owned')).toContain('owned-outside-company');
    expect(byUser.get('bad')).toContain('invalid');
    expect(byUser.get('gone')).toContain('u-vanished, which no longer exists');
    expect(byUser.get('new')).toContain('has no TeamViewer user yet');
    expect(byUser.get('owned')).toContain('group Support');
    expect(plan.summary.skipped['member-not-provisioned']).toBe(5);
  });

  it('names the TeamViewer group on the report when the group is linked', () => {
    const plan = computeGroupPlan(
      input({
        groups: [idpGroup('g1', 'Support', ['a', 'x'])],
        teamviewerGroups: [tvGroup('t1', 'Support', ['ua'])],
        groupLinks: new Map([['g1', 't1']]),
        provisioned: ['a'],
      }),
    );
    expect(plan.operations).toEqual([]);
    expect(plan.skipped).toMatchObject([{ reason: 'member-not-provisioned', sourceGroupId: 'g1', tvGroupId: 't1', sourceUserId: 'x' }]);
    expect(plan.summary.unchanged).toBe(1);
  });
});

describe('taking over by name', () => {
  it('takes over a TeamViewer group with exactly the same name and syncs its members', () => {
    const plan = computeGroupPlan(
      input({
        groups: [idpGroup('g1', 'Support', ['a', 'b'])],
        teamviewerGroups: [tvGroup('t1', 'Support', ['ua', 'uz'])],
        provisioned: ['a', 'b'],
      }),
    );
    expect(plan.links).toEqual([{ action: 'set', sourceGroupId: 'g1', tvGroupId: 't1', reason: 'matched-by-name' }]);
    expect(plan.operations).toEqual([
      {
        kind: 'addGroupMembers',
        key: 'addGroupMembers.g1.0',
        sourceGroupId: 'g1',
        tvGroupId: 't1',
        memberIds: ['ub'],
        members: [{ tvUserId: 'ub', sourceId: 'b' }],
        message: 'add 1 member to Support',
      },
      {
        kind: 'removeGroupMembers',
        key: 'removeGroupMembers.g1.0',
        sourceGroupId: 'g1',
        tvGroupId: 't1',
        memberIds: ['uz'],
        members: [{ tvUserId: 'uz' }],
        message: 'remove 1 member from Support',
      },
    ]);
    expect(plan.summary.managed).toBe(1);
  });

  it('takes over a single case-insensitive match and renames it to the IdP name', () => {
    const plan = computeGroupPlan(
      input({
        groups: [idpGroup('g1', 'Support', ['a'])],
        teamviewerGroups: [tvGroup('t1', 'SUPPORT', ['ua'])],
        provisioned: ['a'],
      }),
    );
    expect(plan.links).toEqual([{ action: 'set', sourceGroupId: 'g1', tvGroupId: 't1', reason: 'matched-by-name' }]);
    expect(plan.operations).toEqual([
      {
        kind: 'renameGroup',
        key: 'renameGroup.g1',
        sourceGroupId: 'g1',
        tvGroupId: 't1',
        displayName: 'Support',
        before: 'SUPPORT',
        message: 'rename group SUPPORT to Support (taken over by name)',
      },
    ]);
  });

  it('prefers the exact match over case-insensitive ones', () => {
    const plan = computeGroupPlan(
      input({
        groups: [idpGroup('g1', 'Support', ['a'])],
        teamviewerGroups: [tvGroup('t1', 'support'), tvGroup('t2', 'Support', ['ua']), tvGroup('t3', 'SUPPORT')],
        provisioned: ['a'],
      }),
    );
    expect(plan.links).toEqual([{ action: 'set', sourceGroupId: 'g1', tvGroupId: 't2', reason: 'matched-by-name' }]);
    expect(plan.operations).toEqual([]);
    expect(plan.summary.unchanged).toBe(1);
  });

  it('takes over nothing and creates nothing when the name matches several TeamViewer groups', () => {
    const plan = computeGroupPlan(
      input({
        groups: [idpGroup('g1', 'Support', ['a']), idpGroup('g2', 'Sales', ['a'])],
        teamviewerGroups: [tvGroup('t1', 'support'), tvGroup('t2', 'SUPPORT'), tvGroup('t3', 'Sales'), tvGroup('t4', 'Sales')],
        provisioned: ['a'],
      }),
    );
    expect(plan.operations).toEqual([]);
    expect(plan.links).toEqual([]);
    expect(plan.skipped.map((s) => [s.reason, s.sourceGroupId])).toEqual([
      ['ambiguous-group-name', 'g1'],
      ['ambiguous-group-name', 'g2'],
    ]);
    expect(plan.skipped[0]?.message).toContain('support (t1), SUPPORT (t2)');
  });

  it('does not take over a TeamViewer group another IdP group in the read is linked to', () => {
    const plan = computeGroupPlan(
      input({
        groups: [idpGroup('g0', 'Helpdesk', ['a']), idpGroup('g1', 'Support', ['a'])],
        teamviewerGroups: [tvGroup('t1', 'Support', ['ua'])],
        groupLinks: new Map([['g0', 't1']]),
        provisioned: ['a'],
      }),
    );
    expect(kinds(plan.operations)).toEqual(['renameGroup']);
    expect(plan.operations[0]).toMatchObject({ sourceGroupId: 'g0', tvGroupId: 't1', displayName: 'Helpdesk', before: 'Support' });
    expect(plan.skipped).toMatchObject([{ reason: 'group-name-taken', sourceGroupId: 'g1', tvGroupId: 't1' }]);
    expect(plan.links).toEqual([]);
  });

  it('takes over the group of a deleted IdP group of the same name instead of deleting it', () => {
    const plan = computeGroupPlan(
      input({
        groups: [idpGroup('g2', 'Support', ['a'])],
        teamviewerGroups: [tvGroup('t1', 'Support', ['ua'])],
        groupLinks: new Map([['g1', 't1']]),
        goneGroups: new Map([['g1', 'deleted']]),
        provisioned: ['a'],
      }),
    );
    expect(plan.operations).toEqual([]);
    expect(plan.links).toEqual([
      { action: 'drop', sourceGroupId: 'g1', tvGroupId: 't1', reason: 'deleted' },
      { action: 'set', sourceGroupId: 'g2', tvGroupId: 't1', reason: 'matched-by-name' },
    ]);
    expect(plan.skipped).toMatchObject([{ reason: 'group-deleted-in-idp-left', sourceGroupId: 'g1' }]);
  });

  it('after an incomplete read, does not take over a group linked to an IdP group missing from it', () => {
    const plan = computeGroupPlan(
      input({
        removalsBlocked: incomplete,
        groups: [idpGroup('g2', 'Support', ['a'])],
        teamviewerGroups: [tvGroup('t1', 'Support', ['ua'])],
        groupLinks: new Map([['g1', 't1']]),
        provisioned: ['a'],
      }),
    );
    expect(plan.operations).toEqual([]);
    expect(plan.links).toEqual([]);
    expect(plan.skipped.map((s) => [s.reason, s.sourceGroupId])).toEqual([
      ['group-name-taken', 'g2'],
      ['source-read-incomplete', 'g1'],
    ]);
  });
});

describe('linked groups', () => {
  it('renames a linked group whose IdP name changed, on exact comparison', () => {
    const plan = computeGroupPlan(
      input({
        groups: [idpGroup('g1', 'Support EU', ['a']), idpGroup('g2', 'sales', ['a'])],
        teamviewerGroups: [tvGroup('t1', 'Support', ['ua']), tvGroup('t2', 'Sales', ['ua'])],
        groupLinks: new Map([
          ['g1', 't1'],
          ['g2', 't2'],
        ]),
        provisioned: ['a'],
      }),
    );
    expect(plan.operations).toEqual([
      {
        kind: 'renameGroup',
        key: 'renameGroup.g2',
        sourceGroupId: 'g2',
        tvGroupId: 't2',
        displayName: 'sales',
        before: 'Sales',
        message: 'rename group Sales to sales',
      },
      {
        kind: 'renameGroup',
        key: 'renameGroup.g1',
        sourceGroupId: 'g1',
        tvGroupId: 't1',
        displayName: 'Support EU',
        before: 'Support',
        message: 'rename group Support to Support EU',
      },
    ]);
    expect(plan.links).toEqual([]);
    expect(plan.summary.managed).toBe(2);
  });

  it('names whom each operation adds or removes: the TeamViewer user, the IdP user linked to it and its address', () => {
    const userEmails = new Map([
      ['a', 'Ann@corp.example'],
      ['b', 'bob@corp.example'],
      ['old', 'old@corp.example'],
    ]);
    const plan = computeGroupPlan(
      input({
        groups: [idpGroup('g1', 'Support', ['a', 'b']), idpGroup('g2', 'Sales', ['b'])],
        teamviewerGroups: [tvGroup('t1', 'Support', ['ua', 'uold', 'manual'])],
        groupLinks: new Map([['g1', 't1']]),
        provisioned: ['a', 'b', 'old', 'zz-second-link-of-b'],
        userLinks: new Map([
          ['a', 'ua'],
          ['b', 'ub'],
          ['zz-second-link-of-b', 'ub'],
          ['old', 'uold'],
        ]),
        userEmails,
        policy: { batchSize: 1 },
      }),
    );
    expect(plan.operations.map((op) => [op.kind, op.sourceGroupId, 'members' in op ? op.members : undefined])).toEqual([
      ['createGroup', 'g2', [{ tvUserId: 'ub', sourceId: 'b', email: 'bob@corp.example' }]],
      ['addGroupMembers', 'g1', [{ tvUserId: 'ub', sourceId: 'b', email: 'bob@corp.example' }]],
      ['removeGroupMembers', 'g1', [{ tvUserId: 'manual' }]],
      ['removeGroupMembers', 'g1', [{ tvUserId: 'uold', sourceId: 'old', email: 'old@corp.example' }]],
    ]);
  });

  it('adds the members it lacks and removes the ones the IdP does not list', () => {
    const plan = computeGroupPlan(
      input({
        groups: [idpGroup('g1', 'Support', ['a', 'b', 'b', 'c'])],
        teamviewerGroups: [tvGroup('t1', 'Support', ['ua', 'ux', 'manual', 'ua'])],
        groupLinks: new Map([['g1', 't1']]),
        provisioned: ['a', 'b', 'c'],
      }),
    );
    expect(plan.operations.map((op) => [op.kind, 'memberIds' in op ? op.memberIds : []])).toEqual([
      ['addGroupMembers', ['ub', 'uc']],
      ['removeGroupMembers', ['manual', 'ux']],
    ]);
    expect(plan.summary).toMatchObject({ membersAdded: 2, membersRemoved: 2, unchanged: 0 });
  });

  it('counts a linked group that is in step as unchanged', () => {
    const plan = computeGroupPlan(
      input({
        groups: [idpGroup('g1', 'Support', ['b', 'a'])],
        teamviewerGroups: [tvGroup('t1', 'Support', ['ub', 'ua'])],
        groupLinks: new Map([['g1', 't1']]),
        provisioned: ['a', 'b'],
      }),
    );
    expect(plan.operations).toEqual([]);
    expect(plan.summary).toMatchObject({ unchanged: 1, managed: 1, inScope: 1, teamviewerGroups: 1 });
  });

  it('batches membership changes by the batch size', () => {
    const wanted = range('a', 250);
    const extra = range('old', 150);
    const plan = computeGroupPlan(
      input({
        groups: [idpGroup('g1', 'Support', wanted)],
        teamviewerGroups: [tvGroup('t1', 'Support', extra.map(tvUser))],
        groupLinks: new Map([['g1', 't1']]),
        provisioned: wanted,
        policy: { memberRemovalThreshold: anyRemovals },
      }),
    );
    expect(plan.operations.map((op) => [op.key, 'memberIds' in op ? op.memberIds.length : 0, op.message])).toEqual([
      ['addGroupMembers.g1.0', 100, 'add 100 members to Support (batch 1 of 3)'],
      ['addGroupMembers.g1.1', 100, 'add 100 members to Support (batch 2 of 3)'],
      ['addGroupMembers.g1.2', 50, 'add 50 members to Support (batch 3 of 3)'],
      ['removeGroupMembers.g1.0', 100, 'remove 100 members from Support (batch 1 of 2)'],
      ['removeGroupMembers.g1.1', 50, 'remove 50 members from Support (batch 2 of 2)'],
    ]);
    const added = plan.operations.flatMap((op) => (op.kind === 'addGroupMembers' ? op.memberIds : []));
    expect(added).toEqual(wanted.map(tvUser));
    expect(plan.summary).toMatchObject({ membersAdded: 250, membersRemoved: 150 });
  });

  it('drops a link whose TeamViewer group is gone and treats the group as unlinked', () => {
    const plan = computeGroupPlan(
      input({
        groups: [idpGroup('g1', 'Support', ['a']), idpGroup('g2', 'Sales', ['a'])],
        teamviewerGroups: [tvGroup('t9', 'Sales', [])],
        groupLinks: new Map([
          ['g1', 't1'],
          ['g2', 't2'],
        ]),
        provisioned: ['a'],
      }),
    );
    expect(plan.links).toEqual([
      { action: 'drop', sourceGroupId: 'g1', tvGroupId: 't1', reason: 'teamviewer-group-gone' },
      { action: 'drop', sourceGroupId: 'g2', tvGroupId: 't2', reason: 'teamviewer-group-gone' },
      { action: 'set', sourceGroupId: 'g2', tvGroupId: 't9', reason: 'matched-by-name' },
    ]);
    expect(plan.operations.map((op) => [op.kind, op.sourceGroupId])).toEqual([
      ['createGroup', 'g1'],
      ['addGroupMembers', 'g2'],
    ]);
    expect(plan.summary.managed).toBe(1);
  });

  it('keeps one owner when two IdP groups link to the same TeamViewer group', () => {
    const plan = computeGroupPlan(
      input({
        groups: [idpGroup('g2', 'Support 2', ['b']), idpGroup('g1', 'Support', ['a'])],
        teamviewerGroups: [tvGroup('t1', 'Support', ['ua'])],
        groupLinks: new Map([
          ['g1', 't1'],
          ['g2', 't1'],
        ]),
        provisioned: ['a', 'b'],
      }),
    );
    expect(plan.operations).toEqual([]);
    expect(plan.skipped).toMatchObject([{ reason: 'teamviewer-group-shared', sourceGroupId: 'g2', tvGroupId: 't1' }]);
  });
});

describe('an incomplete IdP read', () => {
  it('removes no member and deletes or unlinks no group, but still renames, adds and creates', () => {
    const plan = computeGroupPlan(
      input({
        removalsBlocked: incomplete,
        groups: [idpGroup('g1', 'Support EU', ['a', 'b']), idpGroup('g5', 'New', ['a'])],
        teamviewerGroups: [tvGroup('t1', 'Support', ['ua', 'ux', 'uy']), tvGroup('t2', 'Finance'), tvGroup('t3', 'Legal'), tvGroup('t4', 'Ops')],
        groupLinks: new Map([
          ['g1', 't1'],
          ['g2', 't2'],
          ['g3', 't3'],
          ['g4', 't4'],
          ['g6', 't-gone'],
        ]),
        goneGroups: new Map([
          ['g2', 'deleted'],
          ['g3', 'out-of-scope'],
          ['g4', 'deleted'],
        ]),
        policy: { onIdpDelete: 'delete' },
        provisioned: ['a', 'b'],
      }),
    );
    expect(kinds(plan.operations)).toEqual(['createGroup', 'renameGroup', 'addGroupMembers']);
    expect(plan.held).toEqual([]);
    expect(plan.links).toEqual([{ action: 'drop', sourceGroupId: 'g6', tvGroupId: 't-gone', reason: 'teamviewer-group-gone' }]);
    expect(plan.skipped.map((s) => [s.reason, s.sourceGroupId])).toEqual([
      ['source-read-incomplete', 'g1'],
      ['source-read-incomplete', 'g2'],
      ['source-read-incomplete', 'g3'],
      ['source-read-incomplete', 'g4'],
    ]);
    expect(plan.notices).toHaveLength(1);
    expect(plan.notices[0]).toContain(
      'No group is deleted or unlinked and no member removed this cycle: the IdP read did not cover the whole scope (page 3 failed)',
    );
    expect(plan.removalsBlocked?.reason).toBe('source-read-incomplete');
    expect(plan.notices[0]).toContain('2 members kept in 1 group(s), 3 missing group(s) kept');
  });

  it('keeps the link even of a group the IdP reports deleted when such groups are left', () => {
    const plan = computeGroupPlan(
      input({
        removalsBlocked: incomplete,
        teamviewerGroups: [tvGroup('t2', 'Finance')],
        groupLinks: new Map([['g2', 't2']]),
        goneGroups: new Map([['g2', 'deleted']]),
        policy: { onIdpDelete: 'leave' },
      }),
    );
    expect(plan.operations).toEqual([]);
    expect(plan.links).toEqual([]);
    expect(plan.skipped).toMatchObject([
      { reason: 'source-read-incomplete', sourceGroupId: 'g2', message: expect.stringContaining('reported deleted by the IdP; kept in TeamViewer and linked') },
    ]);
  });
});

describe('linked groups missing from the read', () => {
  const base = {
    groups: [idpGroup('g1', 'Support', ['a'])],
    teamviewerGroups: [tvGroup('t1', 'Support', ['ua']), tvGroup('t2', 'Finance', ['ua'])],
    groupLinks: new Map([
      ['g1', 't1'],
      ['g2', 't2'],
    ]),
    provisioned: ['a'],
  };

  it('deletes the TeamViewer group of a group deleted in the IdP, and drops its link', () => {
    const plan = computeGroupPlan(input({ ...base, goneGroups: new Map([['g2', 'deleted']]) }));
    expect(plan.operations).toEqual([
      {
        kind: 'deleteGroup',
        key: 'deleteGroup.g2',
        sourceGroupId: 'g2',
        tvGroupId: 't2',
        displayName: 'Finance',
        message: 'group Finance was deleted in the IdP; deleting it in TeamViewer',
      },
    ]);
    expect(plan.links).toEqual([{ action: 'drop', sourceGroupId: 'g2', tvGroupId: 't2', reason: 'deleted' }]);
    expect(plan.summary).toMatchObject({ managed: 2, unchanged: 1, operations: { deleteGroup: 1 } });
  });

  it('only drops the link when the deleted group is already gone from TeamViewer', () => {
    const plan = computeGroupPlan(input({ ...base, teamviewerGroups: [tvGroup('t1', 'Support', ['ua'])], goneGroups: new Map([['g2', 'deleted']]) }));
    expect(plan.operations).toEqual([]);
    expect(plan.links).toEqual([{ action: 'drop', sourceGroupId: 'g2', tvGroupId: 't2', reason: 'teamviewer-group-gone' }]);
  });

  it('leaves the group and drops the link when deletions are to be left', () => {
    const plan = computeGroupPlan(input({ ...base, goneGroups: new Map([['g2', 'deleted']]), policy: { onIdpDelete: 'leave' } }));
    expect(plan.operations).toEqual([]);
    expect(plan.links).toEqual([{ action: 'drop', sourceGroupId: 'g2', tvGroupId: 't2', reason: 'deleted' }]);
    expect(plan.skipped).toMatchObject([{ reason: 'group-deleted-in-idp-left', sourceGroupId: 'g2', tvGroupId: 't2' }]);
    expect(plan.skipped[0]?.message).toContain('Finance');
  });

  it('leaves a group that is out of scope, or whose fate is unknown, as it is and stops syncing it', () => {
    for (const goneGroups of [new Map([['g2', 'out-of-scope' as const]]), new Map<string, 'deleted' | 'out-of-scope'>()]) {
      const plan = computeGroupPlan(input({ ...base, goneGroups }));
      expect(plan.operations).toEqual([]);
      expect(plan.links).toEqual([{ action: 'drop', sourceGroupId: 'g2', tvGroupId: 't2', reason: 'out-of-scope' }]);
      expect(plan.skipped).toMatchObject([{ reason: 'group-left-out-of-scope', sourceGroupId: 'g2', tvGroupId: 't2' }]);
    }
  });

  it('never deletes a TeamViewer group that a group in the read still syncs', () => {
    const plan = computeGroupPlan(
      input({
        ...base,
        groupLinks: new Map([
          ['g1', 't1'],
          ['g2', 't1'],
        ]),
        goneGroups: new Map([['g2', 'deleted']]),
      }),
    );
    expect(plan.operations).toEqual([]);
    expect(plan.links).toEqual([{ action: 'drop', sourceGroupId: 'g2', tvGroupId: 't1', reason: 'deleted' }]);
  });

  it('deletes a TeamViewer group once when two deleted IdP groups link to it', () => {
    const plan = computeGroupPlan(
      input({
        ...base,
        groupLinks: new Map([
          ['g1', 't1'],
          ['g3', 't2'],
          ['g2', 't2'],
        ]),
        goneGroups: new Map([
          ['g2', 'deleted'],
          ['g3', 'deleted'],
        ]),
      }),
    );
    expect(plan.operations.map((op) => op.key)).toEqual(['deleteGroup.g2']);
    expect(plan.links.map((l) => [l.sourceGroupId, l.reason])).toEqual([
      ['g2', 'deleted'],
      ['g3', 'deleted'],
    ]);
  });
});

describe('the deletion threshold', () => {
  const names = ['A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J'];
  /** Ten managed groups; the first `deleted` are gone in the IdP. */
  function scenario(deleted: number, policyOver: Partial<GroupPlanPolicy>): GroupPlanInput {
    const gone = names.slice(0, deleted);
    return input({
      groups: names.slice(deleted).map((n) => idpGroup(`g${n}`, n, ['a'])),
      teamviewerGroups: names.map((n) => tvGroup(`t${n}`, n, ['ua'])),
      groupLinks: new Map(names.map((n) => [`g${n}`, `t${n}`])),
      goneGroups: new Map(gone.map((n) => [`g${n}`, 'deleted' as const])),
      provisioned: ['a'],
      policy: policyOver,
    });
  }

  it('holds all deletions when, with the user deactivations of this cycle, they exceed the count', () => {
    const threshold = { maxCount: 3, maxPercent: 100, minCountForPercent: 100 };
    const under = computeGroupPlan(scenario(2, { threshold, deactivationsThisCycle: 1 }));
    expect(under.held).toEqual([]);
    expect(under.summary.operations.deleteGroup).toBe(2);

    const over = computeGroupPlan(scenario(2, { threshold, deactivationsThisCycle: 2 }));
    expect(over.operations).toEqual([]);
    expect(over.held.map((op) => op.tvGroupId)).toEqual(['tA', 'tB']);
    expect(over.links).toEqual([]);
    expect(over.summary.held).toBe(2);
    expect(over.notices).toHaveLength(1);
    expect(over.notices[0]).toContain('2 unapproved group deletion(s) (20.0% of 10 managed groups) on top of 2 user deactivations');
  });

  it('holds deletions above the share of managed groups once there are enough of them', () => {
    const threshold = { maxCount: 100, maxPercent: 20, minCountForPercent: 2 };
    expect(computeGroupPlan(scenario(2, { threshold })).held).toEqual([]);
    const plan = computeGroupPlan(scenario(3, { threshold }));
    expect(plan.held).toHaveLength(3);
    expect(plan.summary.operations.deleteGroup).toBe(0);
    expect(computeGroupPlan(scenario(3, { threshold: { ...threshold, minCountForPercent: 3 } })).held).toEqual([]);
  });

  it('lets approved deletions pass while holding the others', () => {
    const plan = computeGroupPlan(scenario(3, { threshold: { maxCount: 1, maxPercent: 100, minCountForPercent: 100 }, approvedDeletions: new Set(['tB']) }));
    expect(plan.operations.map((op) => op.key)).toEqual(['deleteGroup.gB']);
    expect(plan.links).toEqual([{ action: 'drop', sourceGroupId: 'gB', tvGroupId: 'tB', reason: 'deleted' }]);
    expect(plan.held.map((op) => op.tvGroupId)).toEqual(['tA', 'tC']);
    expect(plan.notices[0]).toContain('2 unapproved group deletion(s)');
  });

  it('lets deletions pass when every one is approved', () => {
    const plan = computeGroupPlan(
      scenario(3, { threshold: { maxCount: 1, maxPercent: 100, minCountForPercent: 100 }, approvedDeletions: new Set(['tA', 'tB', 'tC']) }),
    );
    expect(plan.summary.operations.deleteGroup).toBe(3);
    expect(plan.held).toEqual([]);
    expect(plan.notices).toEqual([]);
  });
});

describe('duplicate IdP group names', () => {
  it('keeps syncing linked namesakes but lets none take over or create by name', () => {
    const plan = computeGroupPlan(
      input({
        groups: [idpGroup('g1', 'Support', ['a', 'b']), idpGroup('g2', 'support', ['a']), idpGroup('g3', 'Sales', ['a']), idpGroup('g4', 'SALES', ['a'])],
        teamviewerGroups: [tvGroup('t1', 'Support', ['ua'])],
        groupLinks: new Map([['g1', 't1']]),
        provisioned: ['a', 'b'],
      }),
    );
    expect(plan.operations.map((op) => [op.kind, op.sourceGroupId])).toEqual([['addGroupMembers', 'g1']]);
    expect(plan.links).toEqual([]);
    expect(plan.skipped.map((s) => [s.reason, s.sourceGroupId])).toEqual([
      ['duplicate-group-name', 'g2'],
      ['duplicate-group-name', 'g3'],
      ['duplicate-group-name', 'g4'],
    ]);
    expect(plan.skipped[0]?.message).toContain('Support (g1)');
  });

  it('does not take over an existing TeamViewer group for either of two unlinked namesakes', () => {
    const plan = computeGroupPlan(
      input({
        groups: [idpGroup('g1', 'Support', ['a']), idpGroup('g2', 'Support', ['a'])],
        teamviewerGroups: [tvGroup('t1', 'Support')],
        provisioned: ['a'],
      }),
    );
    expect(plan.operations).toEqual([]);
    expect(plan.links).toEqual([]);
    expect(plan.summary.skipped).toEqual({ 'duplicate-group-name': 2 });
  });
});

describe('the plan as a whole', () => {
  function mixed(): GroupPlanInput {
    return input({
      groups: [
        idpGroup('g1', 'Support', ['a', 'b', 'x']),
        idpGroup('g2', 'Sales', ['c', 'a']),
        idpGroup('g3', 'Dev', range('d', 230)),
        idpGroup('g4', 'ops', ['a']),
        idpGroup('g5', 'Empty', []),
        idpGroup('g6', 'Twin', ['a']),
        idpGroup('g7', 'twin', ['b']),
        idpGroup('g8', 'Dup', ['a']),
      ],
      teamviewerGroups: [
        tvGroup('t1', 'Support old', ['ua', 'uz']),
        tvGroup('t3', 'Dev', range('e', 120).map(tvUser)),
        tvGroup('t4', 'OPS'),
        tvGroup('t5', 'Old'),
        tvGroup('t6', 'Left'),
        tvGroup('t8', 'dUp'),
        tvGroup('t9', 'DUP'),
      ],
      groupLinks: new Map([
        ['g1', 't1'],
        ['g3', 't3'],
        ['g50', 't5'],
        ['g60', 't6'],
        ['g70', 't-gone'],
      ]),
      goneGroups: new Map([['g50', 'deleted']]),
      userProblems: new Map([['x', 'invalid']]),
      provisioned: ['a', 'b', 'c', ...range('d', 230)],
      policy: { batchSize: 100, memberRemovalThreshold: anyRemovals },
    });
  }

  function shuffle<T>(items: readonly T[], seed: number): T[] {
    const out = [...items];
    let state = seed;
    for (let i = out.length - 1; i > 0; i--) {
      state = (state * 1103515245 + 12345) % 2147483648;
      const j = state % (i + 1);
      const a = out[i] as T;
      out[i] = out[j] as T;
      out[j] = a;
    }
    return out;
  }

  it('orders operations by kind, then group name, then batch, with unique keys', () => {
    const plan = computeGroupPlan(mixed());
    expect(plan.operations.map((op) => op.key)).toEqual([
      'createGroup.g2',
      'renameGroup.g4',
      'renameGroup.g1',
      'addGroupMembers.g3.0',
      'addGroupMembers.g3.1',
      'addGroupMembers.g3.2',
      'addGroupMembers.g4.0',
      'addGroupMembers.g1.0',
      'removeGroupMembers.g3.0',
      'removeGroupMembers.g3.1',
      'removeGroupMembers.g1.0',
      'deleteGroup.g50',
    ]);
    expect(new Set(plan.operations.map((op) => op.key)).size).toBe(plan.operations.length);
    expect(plan.operations.every((op) => op.message.length > 0)).toBe(true);
    expect(plan.skipped.every((s) => s.message.length > 0)).toBe(true);
    expect(plan.summary.skipped).toEqual({
      'ambiguous-group-name': 1,
      'duplicate-group-name': 2,
      'empty-group-not-created': 1,
      'group-left-out-of-scope': 1,
      'member-not-provisioned': 1,
    });
  });

  it('gives the same plan whatever the order of its input', () => {
    const reference = computeGroupPlan(mixed());
    for (const seed of [1, 7, 42, 1234]) {
      const base = mixed();
      const shuffled: GroupPlanInput = {
        ...base,
        groups: shuffle(base.groups, seed).map((g) => ({ ...g, memberIds: shuffle(g.memberIds, seed + 1) })),
        teamviewerGroups: shuffle(base.teamviewerGroups, seed + 2).map((g) => ({ ...g, memberIds: shuffle(g.memberIds, seed + 3) })),
        groupLinks: new Map(shuffle([...base.groupLinks], seed + 4)),
        userLinks: new Map(shuffle([...base.userLinks], seed + 5)),
        goneGroups: new Map(shuffle([...base.goneGroups], seed + 6)),
      };
      expect(computeGroupPlan(shuffled)).toEqual(reference);
    }
  });

  it('plans 500 groups of 10,000 users with 30,000 memberships correctly', () => {
    const userIds = range('p', 10_000);
    const groups: DirectoryGroup[] = [];
    const teamviewerGroups: TvGroup[] = [];
    const groupLinks = new Map<string, string>();
    let expectedAdds = 0;
    let expectedRemoves = 0;
    let expectedCreateMembers = 0;
    for (let g = 0; g < 500; g++) {
      // 60 distinct members each (167 * 59 < 10,000), spread over all users.
      const memberIds = Array.from({ length: 60 }, (_, i) => userIds[(g * 20 + i * 167) % userIds.length] as string);
      const id = `g${String(g).padStart(3, '0')}`;
      groups.push(idpGroup(id, `Group ${id}`, memberIds));
      if (g % 2 === 0) {
        // Linked: TeamViewer has the first 50 members and 5 others.
        const current = [...memberIds.slice(0, 50).map(tvUser), ...range(`stale${g}-`, 5)];
        teamviewerGroups.push(tvGroup(`t${id}`, `Group ${id}`, current));
        groupLinks.set(id, `t${id}`);
        expectedAdds += 10;
        expectedRemoves += 5;
      } else {
        expectedCreateMembers += 60;
      }
    }
    expect(groups.reduce((n, g) => n + g.memberIds.length, 0)).toBe(30_000);

    const plan = computeGroupPlan(input({ groups, teamviewerGroups, groupLinks, provisioned: userIds, policy: { memberRemovalThreshold: anyRemovals } }));
    expect(plan.summary.operations.createGroup).toBe(250);
    expect(plan.summary.operations.removeGroupMembers).toBe(250);
    expect(plan.summary.membersRemoved).toBe(expectedRemoves);
    expect(plan.summary.membersAdded).toBe(expectedAdds + expectedCreateMembers);
    expect(plan.skipped).toEqual([]);
    expect(plan.held).toEqual([]);
    expect(new Set(plan.operations.map((op) => op.key)).size).toBe(plan.operations.length);
  });
});

describe('members whose deactivation was stopped', () => {
  it('keeps them in their groups', () => {
    const plan = computeGroupPlan({
      groups: [{ id: 'g', name: 'G', memberIds: ['a'] }],
      removalsBlocked: undefined,
      teamviewerGroups: [{ id: '10', displayName: 'G', memberIds: ['ua', 'ub', 'uc'] }],
      groupLinks: new Map([['g', '10']]),
      userLinks: new Map([
        ['a', 'ua'],
        ['b', 'ub'],
        ['c', 'uc'],
      ]),
      teamviewerUserIds: new Set(['ua', 'ub', 'uc']),
      userProblems: new Map(),
      goneGroups: new Map(),
      keepMembers: new Set(['ub']),
      policy,
    });
    expect(plan.operations).toEqual([expect.objectContaining({ kind: 'removeGroupMembers', memberIds: ['uc'] })]);
  });
});

describe('over-long values', () => {
  const huge = 'N'.repeat(10 * 1024 * 1024);
  it('skips a group with an over-long name and keeps its TeamViewer group; the plan stays small', () => {
    const plan = computeGroupPlan(
      input({
        groups: [idpGroup('g1', huge, ['a', 'b']), idpGroup('g2', 'Ops', ['a'])],
        teamviewerGroups: [tvGroup('t1', 'Sales', ['ua', 'uc'])],
        groupLinks: new Map([['g1', 't1']]),
        goneGroups: new Map([['g1', 'deleted']]),
        provisioned: ['a', 'b', 'c'],
      }),
    );
    expect(plan.operations.map((op) => op.key)).toEqual(['createGroup.g2']);
    expect(plan.links).toEqual([]);
    expect(plan.skipped).toEqual([{ sourceGroupId: 'g1', reason: 'value-too-long', message: expect.stringContaining('name of 10485760 characters') }]);
    expect(plan.summary.inScope).toBe(2);
    expect(JSON.stringify(plan).length).toBeLessThan(10_000);
  });

  it('skips a group with an over-long id, naming it only in part', () => {
    const plan = computeGroupPlan(input({ groups: [idpGroup(huge, 'Sales', ['a'])], provisioned: ['a'] }));
    expect(plan.operations).toEqual([]);
    expect(plan.skipped).toMatchObject([{ reason: 'value-too-long', message: expect.stringContaining('id of 10485760 characters') }]);
    expect(JSON.stringify(plan).length).toBeLessThan(10_000);
  });

  it('leaves out members named by an over-long id, and echoes a long TeamViewer name only in part', () => {
    const plan = computeGroupPlan(
      input({
        groups: [idpGroup('g1', 'Sales', ['a', huge])],
        teamviewerGroups: [tvGroup('t1', huge, ['ua'])],
        groupLinks: new Map([['g1', 't1']]),
        provisioned: ['a'],
      }),
    );
    expect(plan.operations).toMatchObject([{ kind: 'renameGroup', displayName: 'Sales' }]);
    expect(plan.skipped).toMatchObject([
      { reason: 'value-too-long', sourceGroupId: 'g1', message: expect.stringContaining('1 member of group Sales named by an id longer than 1024') },
    ]);
    expect(JSON.stringify(plan).length).toBeLessThan(10_000);
  });

  it('what is screened out before storing is still reported and still protects its TeamViewer group', () => {
    const { groups, screenedOut } = screenGroups([idpGroup('g1', huge, ['a']), idpGroup('g2', 'Ops', ['a', huge])]);
    expect(JSON.stringify({ groups, screenedOut }).length).toBeLessThan(10_000);
    const plan = computeGroupPlan(
      input({
        groups,
        screenedOut,
        teamviewerGroups: [tvGroup('t1', 'Sales', ['ua'])],
        groupLinks: new Map([['g1', 't1']]),
        goneGroups: new Map([['g1', 'deleted']]),
        provisioned: ['a'],
      }),
    );
    expect(plan.operations.map((op) => op.key)).toEqual(['createGroup.g2']);
    expect(plan.skipped.map((s) => [s.reason, s.sourceGroupId])).toEqual([
      ['value-too-long', 'g1'],
      ['value-too-long', 'g2'],
    ]);
  });
});
