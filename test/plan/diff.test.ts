import { describe, expect, it } from 'vitest';
import { computePlan, type PlanInput } from '../../src/plan/diff.js';
import type { DirectoryUser } from '../../src/model/directory.js';
import type { TvUser } from '../../src/model/teamviewer.js';
import type { PlanPolicy } from '../../src/plan/types.js';

const policy: PlanPolicy = {
  protect: [],
  threshold: { maxCount: 50, maxPercent: 20, minCountForPercent: 5 },
  outsideCompanyRetryMs: 24 * 3600_000,
};

function idp(id: string, email: string, extra: Partial<DirectoryUser> = {}): DirectoryUser {
  return { id, email, displayName: `Name ${id}`, active: true, ...extra };
}
function tv(id: string, email: string, extra: Partial<TvUser> = {}): TvUser {
  return { id, userName: email, email, displayName: `Name ${id.replace(/^u/, '')}`, active: true, ...extra };
}
function input(over: Partial<PlanInput> & { users?: DirectoryUser[] }): PlanInput {
  const { users, ...rest } = over;
  return {
    directory: { users: users ?? [], complete: true },
    teamviewer: [],
    links: new Map(),
    outsideCompany: new Map(),
    nowMs: 1_000_000_000_000,
    policy,
    ...rest,
  };
}

describe('creates', () => {
  it('creates users in scope that TeamViewer lacks, with create-only attributes', () => {
    const plan = computePlan(
      input({
        users: [idp('2', 'Bob@X.test', { preferredLanguage: 'de-DE' }), idp('1', 'alice@x.test')],
        policy: { ...policy, ssoCustomerId: 'sso-123' },
      }),
    );
    expect(plan.operations.map((o) => o.kind)).toEqual(['createUser', 'createUser']);
    expect(plan.operations[0]).toMatchObject({
      kind: 'createUser',
      sourceId: '1',
      user: { userName: 'alice@x.test', displayName: 'Name 1', active: true, ssoCustomerId: 'sso-123' },
    });
    expect(plan.operations[1]).toMatchObject({ user: { userName: 'Bob@X.test', preferredLanguage: 'de', ssoCustomerId: 'sso-123' }, reason: 'new-in-scope' });
    expect(plan.summary.operations.createUser).toBe(2);
  });

  it('does not create a user who is disabled in the IdP', () => {
    const plan = computePlan(input({ users: [idp('1', 'a@x.test', { active: false })] }));
    expect(plan.operations).toEqual([]);
    expect(plan.skipped).toMatchObject([{ reason: 'inactive-not-in-teamviewer', sourceId: '1' }]);
  });

  it('skips users from whom no e-mail or name can be derived, never sending them', () => {
    const plan = computePlan(input({ users: [idp('1', ''), { id: '2', email: 'b@x.test', active: true }] }));
    expect(plan.operations).toEqual([]);
    expect(plan.skipped.map((s) => s.reason).sort()).toEqual(['no-email', 'no-name']);
  });

  it('creates none of the users sharing an e-mail, and reports each', () => {
    const plan = computePlan(input({ users: [idp('1', 'dup@x.test'), idp('2', 'DUP@x.test'), idp('3', 'c@x.test')] }));
    expect(plan.operations.map((o) => o.sourceId)).toEqual(['3']);
    const dups = plan.skipped.filter((s) => s.reason === 'duplicate-email');
    expect(dups.map((s) => s.sourceId).sort()).toEqual(['1', '2']);
    expect(dups[0]?.message).toMatch(/more than one IdP user/);
  });

  it('waits out the back-off for an address owned outside the company, then tries again', () => {
    const outsideCompany = new Map([['ext@x.test', { atMs: 1_000_000_000_000 - 3600_000, message: '409 e-mail in use' }]]);
    const early = computePlan(input({ users: [idp('1', 'Ext@x.test')], outsideCompany }));
    expect(early.operations).toEqual([]);
    expect(early.skipped[0]).toMatchObject({ reason: 'owned-outside-company', email: 'Ext@x.test' });
    expect(early.skipped[0]?.message).toContain('outside the company');

    const later = computePlan(input({ users: [idp('1', 'Ext@x.test')], outsideCompany, nowMs: 1_000_000_000_000 + 24 * 3600_000 }));
    expect(later.operations).toMatchObject([{ kind: 'createUser', reason: 'retry-after-outside-conflict' }]);
  });
});

describe('matching and links', () => {
  it('matches an unlinked TeamViewer user by e-mail case-insensitively and learns the link', () => {
    const plan = computePlan(
      input({ users: [idp('1', 'Jane@X.test', { displayName: 'Jane' })], teamviewer: [tv('u9', 'jane@x.test', { displayName: 'Jane' })] }),
    );
    expect(plan.operations).toEqual([]);
    expect(plan.links).toEqual([{ action: 'set', sourceId: '1', tvUserId: 'u9', reason: 'matched-by-email' }]);
    expect(plan.summary.unchanged).toBe(1);
  });

  it('compares only displayName and active', () => {
    const plan = computePlan(
      input({
        users: [idp('1', 'a@x.test', { displayName: 'New Name', preferredLanguage: 'fr' })],
        teamviewer: [tv('u1', 'a@x.test', { displayName: 'Old Name' })],
        links: new Map([['1', 'u1']]),
        policy: { ...policy, ssoCustomerId: 'changed' },
      }),
    );
    expect(plan.operations).toEqual([
      expect.objectContaining({
        kind: 'updateUser',
        tvUserId: 'u1',
        changes: { displayName: 'New Name' },
        before: { displayName: 'Old Name', active: true },
        reason: 'attributes-changed',
      }),
    ]);
  });

  it('an e-mail change of a linked user keeps the user, creates nothing, deactivates nobody, and reports both addresses', () => {
    const plan = computePlan(
      input({
        users: [idp('1', 'new@x.test', { displayName: 'Name 1' })],
        teamviewer: [tv('u1', 'old@x.test')],
        links: new Map([['1', 'u1']]),
      }),
    );
    expect(plan.operations).toEqual([]);
    expect(plan.held).toEqual([]);
    const rename = plan.skipped.find((s) => s.reason === 'email-change-unsupported');
    expect(rename?.message).toContain('old@x.test');
    expect(rename?.message).toContain('new@x.test');
    expect(rename?.tvUserId).toBe('u1');
  });

  it('still applies name and status changes to a renamed user', () => {
    const plan = computePlan(
      input({
        users: [idp('1', 'new@x.test', { displayName: 'Renamed', active: false })],
        teamviewer: [tv('u1', 'old@x.test')],
        links: new Map([['1', 'u1']]),
      }),
    );
    expect(plan.operations).toMatchObject([
      { kind: 'deactivateUser', tvUserId: 'u1', changes: { active: false, displayName: 'Renamed' }, reason: 'disabled-in-idp' },
    ]);
  });

  it('drops a link whose TeamViewer user is gone and matches or creates again', () => {
    const plan = computePlan(input({ users: [idp('1', 'a@x.test')], teamviewer: [tv('u9', 'owner@x.test')], links: new Map([['1', 'u404']]) }));
    expect(plan.links).toEqual([{ action: 'drop', sourceId: '1', tvUserId: 'u404', reason: 'teamviewer-user-gone' }]);
    expect(plan.operations).toMatchObject([{ kind: 'createUser' }]);
  });

  it('relinks a user recreated in the IdP under a new id instead of deactivating it', () => {
    const plan = computePlan(
      input({
        users: [idp('new-id', 'a@x.test', { displayName: 'Name 1' })],
        teamviewer: [tv('u1', 'a@x.test')],
        links: new Map([['old-id', 'u1']]),
      }),
    );
    expect(plan.operations).toEqual([]);
    expect(plan.links).toEqual([
      { action: 'set', sourceId: 'new-id', tvUserId: 'u1', reason: 'matched-by-email' },
      { action: 'drop', sourceId: 'old-id', tvUserId: 'u1', reason: 'relinked' },
    ]);
  });

  it('does not take over an address another present IdP user is linked to', () => {
    const plan = computePlan(
      input({
        users: [idp('1', 'renamed@x.test', { displayName: 'Name 1' }), idp('2', 'a@x.test', { displayName: 'Name 2' })],
        teamviewer: [tv('u1', 'a@x.test')],
        links: new Map([['1', 'u1']]),
      }),
    );
    expect(plan.operations).toEqual([]);
    expect(plan.skipped.map((s) => s.reason).sort()).toEqual(['email-change-unsupported', 'email-held-by-other-user']);
  });
});

describe('deactivation rules', () => {
  const linkedPair = {
    teamviewer: [tv('u1', 'a@x.test'), tv('u2', 'b@x.test')],
    links: new Map([
      ['1', 'u1'],
      ['2', 'u2'],
    ]),
  };

  it('deactivates a managed user removed from scope', () => {
    const plan = computePlan(input({ users: [idp('1', 'a@x.test', { displayName: 'Name 1' })], ...linkedPair }));
    expect(plan.operations).toMatchObject([{ kind: 'deactivateUser', tvUserId: 'u2', reason: 'removed-from-scope', sourceId: '2' }]);
  });

  it('deactivates a user disabled in the IdP and reactivates one enabled again', () => {
    const plan = computePlan(
      input({
        users: [idp('1', 'a@x.test', { displayName: 'Name 1', active: false }), idp('2', 'b@x.test', { displayName: 'Name 2' })],
        teamviewer: [tv('u1', 'a@x.test'), tv('u2', 'b@x.test', { active: false })],
        links: linkedPair.links,
      }),
    );
    expect(plan.operations.map((o) => [o.kind, 'tvUserId' in o ? o.tvUserId : undefined])).toEqual([
      ['reactivateUser', 'u2'],
      ['deactivateUser', 'u1'],
    ]);
  });

  it('never deactivates a TeamViewer user it does not manage', () => {
    const plan = computePlan(
      input({
        users: [idp('1', 'a@x.test', { displayName: 'Name 1' })],
        teamviewer: [tv('u1', 'a@x.test'), tv('u7', 'admin@x.test')],
        links: new Map([['1', 'u1']]),
      }),
    );
    expect(plan.operations).toEqual([]);
  });

  it('never deactivates the token owner or a protected address', () => {
    const plan = computePlan(
      input({
        users: [idp('9', 'z@x.test', { displayName: 'Name 9' })],
        teamviewer: [tv('u1', 'Owner@x.test'), tv('u2', 'vip@x.test'), tv('u9', 'z@x.test')],
        links: new Map([
          ['1', 'u1'],
          ['2', 'u2'],
          ['9', 'u9'],
        ]),
        policy: { ...policy, tokenOwnerEmail: 'owner@X.test', protect: ['VIP@x.test'] },
      }),
    );
    expect(plan.operations).toEqual([]);
    const prot = plan.skipped.filter((s) => s.reason === 'protected');
    expect(prot.map((s) => s.tvUserId)).toEqual(['u1', 'u2']);
    expect(prot[0]?.message).toContain('owner of the TeamViewer token');
  });

  it('a partial IdP read deactivates nobody and says why, while creates and updates still run', () => {
    const plan = computePlan(
      input({
        directory: {
          users: [idp('1', 'a@x.test', { displayName: 'Changed', active: false }), idp('3', 'c@x.test')],
          complete: false,
          incompleteReason: 'page 3 failed',
        },
        ...linkedPair,
      }),
    );
    expect(plan.operations.map((o) => o.kind)).toEqual(['createUser', 'updateUser']);
    expect(plan.operations[1]).toMatchObject({ changes: { displayName: 'Changed' } });
    expect(plan.deactivationsBlocked?.reason).toBe('source-read-incomplete');
    expect(plan.notices.join(' ')).toContain('page 3 failed');
    expect(
      plan.skipped
        .filter((s) => s.reason === 'source-read-incomplete')
        .map((s) => s.tvUserId)
        .sort(),
    ).toEqual(['u1', 'u2']);
  });

  it('an empty IdP read deactivates nobody', () => {
    const plan = computePlan(input({ users: [], ...linkedPair }));
    expect(plan.operations).toEqual([]);
    expect(plan.deactivationsBlocked?.reason).toBe('source-empty');
  });

  it('does not deactivate a managed user whose IdP record is present but unusable', () => {
    const plan = computePlan(input({ users: [idp('1', 'a@x.test', { displayName: 'Name 1' }), idp('2', '')], ...linkedPair }));
    expect(plan.operations).toEqual([]);
    expect(plan.skipped.map((s) => s.reason)).toEqual(['no-email']);
  });

  it('holds deactivations above the count threshold, still running creates and updates', () => {
    const n = 10;
    const teamviewer = Array.from({ length: n }, (_, i) => tv(`u${i}`, `p${i}@x.test`));
    const links = new Map(teamviewer.map((t, i) => [String(i), t.id]));
    const plan = computePlan(
      input({
        users: [idp('0', 'p0@x.test', { displayName: 'Renamed' }), idp('new', 'new@x.test')],
        teamviewer,
        links,
        policy: { ...policy, threshold: { maxCount: 5, maxPercent: 100, minCountForPercent: 0 } },
      }),
    );
    expect(plan.held).toHaveLength(9);
    expect(plan.threshold).toEqual({ deactivations: 9, managed: 10, exceeded: true });
    expect(plan.operations.map((o) => o.kind)).toEqual(['createUser', 'updateUser']);
    expect(plan.notices.join(' ')).toMatch(/held for approval/);
  });

  it('holds deactivations above the percentage threshold but not tiny ones', () => {
    const teamviewer = Array.from({ length: 20 }, (_, i) => tv(`u${i}`, `p${i}@x.test`));
    const links = new Map(teamviewer.map((t, i) => [String(i), t.id]));
    const keep = (k: number) => Array.from({ length: k }, (_, i) => idp(String(i), `p${i}@x.test`, { displayName: `Name ${i}` }));
    const thr = { maxCount: 100, maxPercent: 20, minCountForPercent: 3 };
    expect(computePlan(input({ users: keep(14), teamviewer, links, policy: { ...policy, threshold: thr } })).held).toHaveLength(6);
    expect(computePlan(input({ users: keep(17), teamviewer, links, policy: { ...policy, threshold: thr } })).held).toHaveLength(0);
  });

  it('lets approved deactivations through the threshold', () => {
    const teamviewer = Array.from({ length: 4 }, (_, i) => tv(`u${i}`, `p${i}@x.test`));
    const links = new Map(teamviewer.map((t, i) => [String(i), t.id]));
    const plan = computePlan(
      input({
        users: [idp('0', 'p0@x.test', { displayName: 'Name 0' })],
        teamviewer,
        links,
        policy: { ...policy, threshold: { maxCount: 1, maxPercent: 100, minCountForPercent: 0 }, approvedDeactivations: new Set(['u1', 'u2', 'u3']) },
      }),
    );
    expect(plan.held).toEqual([]);
    expect(plan.operations.map((o) => ('tvUserId' in o ? o.tvUserId : undefined))).toEqual(['u1', 'u2', 'u3']);
  });

  it('does not deactivate a user who is already inactive', () => {
    const plan = computePlan(
      input({
        users: [idp('1', 'a@x.test', { displayName: 'Name 1' })],
        teamviewer: [tv('u1', 'a@x.test'), tv('u2', 'b@x.test', { active: false })],
        links: linkedPair.links,
      }),
    );
    expect(plan.operations).toEqual([]);
  });
});

describe('determinism', () => {
  it('gives the same plan in the same order for shuffled input', () => {
    const users = Array.from({ length: 50 }, (_, i) => idp(String(i), `p${i}@x.test`, { displayName: i % 3 ? `Name ${i}` : 'X' }));
    const teamviewer = Array.from({ length: 40 }, (_, i) => tv(`u${i}`, `p${i}@x.test`));
    const links = new Map(teamviewer.slice(0, 30).map((t, i) => [String(i), t.id]));
    const a = computePlan(input({ users, teamviewer, links }));
    const b = computePlan(input({ users: [...users].reverse(), teamviewer: [...teamviewer].reverse(), links: new Map([...links].reverse()) }));
    expect(JSON.stringify(b)).toEqual(JSON.stringify(a));
    expect(a.operations.length).toBeGreaterThan(10);
  });
});

describe('records the connector could not read', () => {
  const teamviewer = [tv('u1', 'a@x.test'), tv('u2', 'b@x.test')];
  const links = new Map([
    ['1', 'u1'],
    ['2', 'u2'],
  ]);
  it('keeps the TeamViewer user of an unreadable record that has an id', () => {
    const plan = computePlan(
      input({
        directory: { users: [idp('1', 'a@x.test', { displayName: 'Name 1' })], complete: true, issues: [{ kind: 'user', objectId: '2', reason: 'malformed' }] },
        teamviewer,
        links,
      }),
    );
    expect(plan.operations).toEqual([]);
  });
  it('deactivates nobody when a group, assignment or membership could not be read', () => {
    for (const kind of ['group', 'membership'] as const) {
      const plan = computePlan(
        input({
          directory: { users: [idp('1', 'a@x.test', { displayName: 'Name 1' })], complete: true, issues: [{ kind, objectId: 'g1', reason: 'malformed' }] },
          teamviewer,
          links,
        }),
      );
      expect(plan.operations).toEqual([]);
      expect(plan.deactivationsBlocked?.message).toMatch(/could not read/);
    }
  });
  it('drops the link of a skipped user whose TeamViewer user is gone', () => {
    const plan = computePlan(input({ users: [idp('1', 'a@x.test', { displayName: 'Name 1' }), idp('2', '')], teamviewer: [tv('u1', 'a@x.test')], links }));
    expect(plan.links).toEqual([{ action: 'drop', sourceId: '2', tvUserId: 'u2', reason: 'teamviewer-user-gone' }]);
  });
  it('deactivates nobody when an unreadable record has no id', () => {
    const plan = computePlan(
      input({
        directory: { users: [idp('1', 'a@x.test', { displayName: 'Name 1' })], complete: true, issues: [{ kind: 'user', reason: 'no id' }] },
        teamviewer,
        links,
      }),
    );
    expect(plan.operations).toEqual([]);
    expect(plan.deactivationsBlocked?.message).toMatch(/without a usable id/);
  });
});

describe('over-long values', () => {
  const tenMegabytes = 'N'.repeat(10 * 1024 * 1024);
  it('skips a user with a 10 MB displayName, keeps its TeamViewer user, and the plan stays small', () => {
    const plan = computePlan(
      input({
        users: [idp('1', 'a@x.test', { displayName: tenMegabytes }), idp('2', 'b@x.test', { displayName: tenMegabytes })],
        teamviewer: [tv('u1', 'a@x.test')],
        links: new Map([['1', 'u1']]),
      }),
    );
    expect(plan.operations).toEqual([]);
    expect(plan.skipped).toMatchObject([
      { reason: 'value-too-long', sourceId: '1', email: 'a@x.test', message: expect.stringContaining('displayName of 10485760 characters') },
      { reason: 'value-too-long', sourceId: '2', email: 'b@x.test' },
    ]);
    expect(JSON.stringify(plan).length).toBeLessThan(10_000);
  });

  it('echoes a 10 MB name TeamViewer holds only in part when it plans the rename', () => {
    const plan = computePlan(
      input({
        users: [idp('1', 'a@x.test', { displayName: 'Short' })],
        teamviewer: [tv('u1', 'a@x.test', { displayName: tenMegabytes })],
        links: new Map([['1', 'u1']]),
      }),
    );
    expect(plan.operations).toMatchObject([{ kind: 'updateUser', changes: { displayName: 'Short' } }]);
    expect(JSON.stringify(plan).length).toBeLessThan(10_000);
  });

  it('names only a few of many IdP users sharing one address', () => {
    const users = Array.from({ length: 500 }, (_, i) => idp(String(i), 'same@x.test'));
    const plan = computePlan(input({ users }));
    expect(plan.skipped).toHaveLength(500);
    expect(Math.max(...plan.skipped.map((s) => s.message.length))).toBeLessThan(400);
    expect(plan.skipped[0]?.message).toContain('and 489 more');
  });
});

describe('Unicode forms of one address', () => {
  const nfc = 'jos\u00e9@x.test';
  const nfd = 'jose\u0301@x.test';
  it('links an IdP address in NFD to the TeamViewer user holding it in NFC instead of creating a second one', () => {
    const plan = computePlan(input({ users: [idp('1', nfd, { displayName: 'Name 1' })], teamviewer: [tv('u1', nfc)] }));
    expect(plan.operations).toEqual([]);
    expect(plan.links).toEqual([{ action: 'set', sourceId: '1', tvUserId: 'u1', reason: 'matched-by-email' }]);
  });

  it('skips two IdP users whose addresses differ only in normalisation as a duplicate', () => {
    const plan = computePlan(input({ users: [idp('1', nfc), idp('2', nfd)] }));
    expect(plan.operations).toEqual([]);
    expect(plan.skipped.map((s) => [s.reason, s.sourceId]).sort()).toEqual([
      ['duplicate-email', '1'],
      ['duplicate-email', '2'],
    ]);
  });
});
