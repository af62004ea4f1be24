import { describe, expect, it } from 'vitest';
import { checkGroups, checkUsers, recordsFromResults, type WrittenGroup, type WrittenUser } from '../../src/plan/drift.js';
import type { TvGroup, TvUser } from '../../src/model/teamviewer.js';
import type { GroupOperation } from '../../src/plan/group-types.js';
import type { OperationResult } from '../../src/plan/report.js';
import type { ChangeUserOperation } from '../../src/plan/types.js';

const tvUser = (id: string, displayName: string, active = true): TvUser => ({
  id,
  userName: `${id}@corp.example`,
  email: `${id}@corp.example`,
  displayName,
  active,
});
const written = (displayName: string, seen: boolean, active = true): WrittenUser => ({ displayName, active, seen });
const update = (tvUserId: string, changes: ChangeUserOperation['changes'], kind: ChangeUserOperation['kind'] = 'updateUser'): ChangeUserOperation => ({
  kind,
  sourceId: `s-${tvUserId}`,
  email: `${tvUserId}@corp.example`,
  tvUserId,
  changes,
  before: { displayName: '?', active: true },
  reason: 'attributes-changed',
  message: 'update',
});

describe('checkUsers', () => {
  it('marks a write seen once a read shows it, and reports nothing', () => {
    const { check, updates } = checkUsers({ records: new Map([['u1', written('Ann', false)]]), teamviewer: [tvUser('u1', 'Ann')], operations: [] });
    expect(check).toEqual({ notKept: [], drift: [] });
    expect(updates.users.set).toEqual([['u1', written('Ann', true)]]);
    expect(updates.users.drop).toEqual([]);
  });

  it('reports nothing and changes nothing on a steady read', () => {
    const { check, updates } = checkUsers({ records: new Map([['u1', written('Ann', true)]]), teamviewer: [tvUser('u1', 'Ann')], operations: [] });
    expect(check).toEqual({ notKept: [], drift: [] });
    expect(updates.users).toEqual({ set: [], drop: [] });
  });

  it('reports a write never shown as not kept, once (the record goes; the plan writes again)', () => {
    const { check, updates } = checkUsers({
      records: new Map([['u1', written('Ann B', false)]]),
      teamviewer: [tvUser('u1', 'Ann A')],
      operations: [update('u1', { displayName: 'Ann B' })],
    });
    expect(check.notKept).toEqual([expect.objectContaining({ kind: 'user-name', tvUserId: 'u1', email: 'u1@corp.example', count: 1 })]);
    expect(check.drift).toEqual([]);
    expect(updates.users.drop).toEqual(['u1']);
  });

  it('reports a created user missing from the read as a create not kept', () => {
    const { check, updates } = checkUsers({ records: new Map([['u9', written('Gone', false)]]), teamviewer: [], operations: [] });
    expect(check.notKept).toEqual([expect.objectContaining({ kind: 'user-create', tvUserId: 'u9' })]);
    expect(updates.users.drop).toEqual(['u9']);
  });

  it('a seen user gone from TeamViewer is not reported, its record goes', () => {
    const { check, updates } = checkUsers({ records: new Map([['u9', written('Gone', true)]]), teamviewer: [], operations: [] });
    expect(check).toEqual({ notKept: [], drift: [] });
    expect(updates.users.drop).toEqual(['u9']);
  });

  it('reports a seen write changed in TeamViewer as drift when the plan sets it back to what tvsync wrote', () => {
    const { check, updates } = checkUsers({
      records: new Map([
        ['u1', written('Ann', true)],
        ['u2', written('Bob', true, true)],
      ]),
      teamviewer: [tvUser('u1', 'Annie'), tvUser('u2', 'Bob', false)],
      operations: [update('u1', { displayName: 'Ann' }), update('u2', { active: true }, 'reactivateUser')],
    });
    expect(check.drift.map((d) => [d.kind, d.tvUserId])).toEqual([
      ['user-name', 'u1'],
      ['user-active', 'u2'],
    ]);
    expect(check.notKept).toEqual([]);
    // Kept until the correction records afresh: a failed correction is reported again.
    expect(updates.users).toEqual({ set: [], drop: [] });
  });

  it('a change the IdP made too is not drift: the record goes', () => {
    const { check, updates } = checkUsers({
      records: new Map([['u1', written('Ann', true)]]),
      teamviewer: [tvUser('u1', 'Annie')],
      operations: [update('u1', { displayName: 'Ann Other' })],
    });
    expect(check).toEqual({ notKept: [], drift: [] });
    expect(updates.users.drop).toEqual(['u1']);
  });

  it('a change the plan leaves alone (IdP agrees, or a hold) is not drift', () => {
    const { check, updates } = checkUsers({ records: new Map([['u1', written('Ann', true)]]), teamviewer: [tvUser('u1', 'Annie')], operations: [] });
    expect(check).toEqual({ notKept: [], drift: [] });
    expect(updates.users.drop).toEqual(['u1']);
  });
});

const group = (displayName: string | undefined, seen: boolean, members: [string, boolean, boolean][] = [], created = false): WrittenGroup => ({
  ...(displayName !== undefined ? { displayName } : {}),
  created,
  seen,
  members: new Map(members.map(([id, inGroup, memberSeen]) => [id, { in: inGroup, seen: memberSeen }])),
});
const tvGroup = (id: string, displayName: string, memberIds: string[]): TvGroup => ({ id, displayName, memberIds });
const add = (tvGroupId: string, memberIds: string[]): GroupOperation => ({
  kind: 'addGroupMembers',
  key: `a.${tvGroupId}`,
  sourceGroupId: 's',
  tvGroupId,
  memberIds,
  message: 'add',
});
const remove = (tvGroupId: string, memberIds: string[]): GroupOperation => ({
  kind: 'removeGroupMembers',
  key: `r.${tvGroupId}`,
  sourceGroupId: 's',
  tvGroupId,
  memberIds,
  message: 'remove',
});

describe('checkGroups', () => {
  it('marks a created group and its members seen, and reports nothing', () => {
    const { check, updates } = checkGroups({
      records: new Map([['g1', group('Sales', false, [['u1', true, false]], true)]]),
      teamviewerGroups: [tvGroup('g1', 'Sales', ['u1'])],
      operations: [],
    });
    expect(check).toEqual({ notKept: [], drift: [] });
    expect(updates.groups.set).toEqual([['g1', { displayName: 'Sales', created: true, seen: true }]]);
    expect(updates.members).toEqual([{ tvGroupId: 'g1', set: [['u1', { in: true, seen: true }]], drop: [] }]);
  });

  it('reports a steady group as nothing and changes no record', () => {
    const { check, updates } = checkGroups({
      records: new Map([['g1', group('Sales', true, [['u1', true, true]])]]),
      teamviewerGroups: [tvGroup('g1', 'Sales', ['u1'])],
      operations: [],
    });
    expect(check).toEqual({ notKept: [], drift: [] });
    expect(updates).toEqual({ users: { set: [], drop: [] }, groups: { set: [], drop: [] }, members: [] });
  });

  it('reports a created group missing, added members absent and removed members present as not kept', () => {
    const { check, updates } = checkGroups({
      records: new Map([
        ['g1', group('Lost', false, [['u1', true, false]], true)],
        [
          'g2',
          group(undefined, true, [
            ['u1', true, false],
            ['u2', false, false],
            ['u3', true, false],
          ]),
        ],
      ]),
      teamviewerGroups: [tvGroup('g2', 'Ops', ['u2', 'u3'])],
      operations: [],
    });
    expect(check.notKept.map((i) => [i.kind, i.tvGroupId, i.count, i.memberIds])).toEqual([
      ['group-create', 'g1', 1, undefined],
      ['group-member-add', 'g2', 1, ['u1']],
      ['group-member-remove', 'g2', 1, ['u2']],
    ]);
    expect(check.drift).toEqual([]);
    expect(updates.groups.drop).toEqual(['g1']);
    expect(updates.members).toEqual([{ tvGroupId: 'g2', set: [['u3', { in: true, seen: true }]], drop: ['u1', 'u2'] }]);
  });

  it('reports a rename not shown as not kept', () => {
    const { check } = checkGroups({ records: new Map([['g1', group('New', false)]]), teamviewerGroups: [tvGroup('g1', 'Old', [])], operations: [] });
    expect(check.notKept).toEqual([expect.objectContaining({ kind: 'group-name', tvGroupId: 'g1' })]);
  });

  it('reports hand-made member and name changes as drift when the plan sets them back', () => {
    const { check } = checkGroups({
      records: new Map([
        [
          'g1',
          group('Sales', true, [
            ['u1', true, true],
            ['u2', false, true],
            ['u3', true, true],
          ]),
        ],
      ]),
      teamviewerGroups: [tvGroup('g1', 'Sales (renamed)', ['u2'])],
      operations: [
        { kind: 'renameGroup', key: 'n', sourceGroupId: 's', tvGroupId: 'g1', displayName: 'Sales', before: 'Sales (renamed)', message: 'rename' },
        add('g1', ['u1']),
        remove('g1', ['u2']),
      ],
    });
    expect(check.notKept).toEqual([]);
    expect(check.drift.map((i) => [i.kind, i.count, i.memberIds])).toEqual([
      ['group-name', 1, undefined],
      ['group-members', 2, ['u1', 'u2']],
    ]);
  });

  it('a member the IdP removed too (no add planned) is not drift: its record goes', () => {
    const { check, updates } = checkGroups({
      records: new Map([['g1', group(undefined, true, [['u1', true, true]])]]),
      teamviewerGroups: [tvGroup('g1', 'Sales', [])],
      operations: [],
    });
    expect(check).toEqual({ notKept: [], drift: [] });
    expect(updates.members).toEqual([{ tvGroupId: 'g1', set: [], drop: ['u1'] }]);
  });
});

describe('recordsFromResults', () => {
  const base = { attempts: 1, message: 'ok' };
  it('records what applied writes left, unseen; failures record nothing', () => {
    const results: OperationResult[] = [
      { ...base, key: 'c', kind: 'createUser', sourceId: 'a', tvUserId: 'u1', after: { displayName: 'Ann', active: true }, status: 'applied' },
      {
        ...base,
        key: 'u',
        kind: 'updateUser',
        sourceId: 'b',
        tvUserId: 'u2',
        before: { displayName: 'B', active: true },
        after: { displayName: 'Bob' },
        status: 'applied',
      },
      {
        ...base,
        key: 'd',
        kind: 'deactivateUser',
        sourceId: 'c',
        tvUserId: 'u3',
        before: { displayName: 'Cy', active: true },
        after: { active: false },
        status: 'failed',
      },
      {
        ...base,
        key: 'g',
        kind: 'createGroup',
        sourceId: 'sg',
        tvGroupId: 'g1',
        after: { displayName: 'Sales' },
        members: [{ tvUserId: 'u1' }],
        status: 'applied',
      },
      { ...base, key: 'r', kind: 'removeGroupMembers', sourceId: 'sh', tvGroupId: 'g2', after: {}, members: [{ tvUserId: 'u2' }], status: 'applied' },
      { ...base, key: 'x', kind: 'deleteGroup', sourceId: 'sx', tvGroupId: 'g3', after: {}, status: 'applied' },
    ];
    const updates = recordsFromResults(results);
    expect(updates.users.set).toEqual([
      ['u1', { displayName: 'Ann', active: true, seen: false }],
      ['u2', { displayName: 'Bob', active: true, seen: false }],
    ]);
    expect(updates.groups.set).toEqual([['g1', { displayName: 'Sales', created: true, seen: false }]]);
    expect(updates.groups.drop).toEqual(['g3']);
    expect(updates.members).toEqual([
      { tvGroupId: 'g1', set: [['u1', { in: true, seen: false }]], drop: [] },
      { tvGroupId: 'g2', set: [['u2', { in: false, seen: false }]], drop: [] },
    ]);
  });
});
