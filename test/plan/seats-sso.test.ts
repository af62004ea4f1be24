import { describe, expect, it } from 'vitest';
import { computePlan, type PlanInput } from '../../src/plan/diff.js';
import type { DirectoryUser } from '../../src/model/directory.js';
import type { TvUser } from '../../src/model/teamviewer.js';
import { applySeats, seatsOf } from '../../src/plan/seats.js';
import { planBreakGlass, summariseSso } from '../../src/plan/sso.js';

const policy = { protect: [], threshold: { maxCount: 50, maxPercent: 20, minCountForPercent: 5 }, outsideCompanyRetryMs: 86_400_000 };
const idp = (id: string, email: string, active = true): DirectoryUser => ({ id, email, displayName: `Name ${id}`, active });
const tv = (id: string, email: string, active = true): TvUser => ({ id, userName: email, email, displayName: `Name ${id}`, active });
function plan(users: DirectoryUser[], teamviewer: TvUser[] = []) {
  const input: PlanInput = { directory: { users, complete: true }, teamviewer, links: new Map(), outsideCompany: new Map(), nowMs: 1e12, policy };
  return computePlan(input);
}

describe('seatsOf', () => {
  it('sums the active licences that state a user limit; add-ons and inactive licences do not count', () => {
    expect(
      seatsOf([
        { active: true, assignedUsers: 8, maxAssignments: 10 },
        { active: true, assignedUsers: 0 },
        { active: true, assignedUsers: 3, maxAssignments: 0 },
        { active: false, assignedUsers: 1, maxAssignments: 50 },
        { active: true, assignedUsers: 6, maxAssignments: 5 },
      ]),
    ).toEqual({ total: 15, used: 14, free: 2 });
    expect(seatsOf([{ active: true, assignedUsers: 4 }])).toBeUndefined();
  });
});

describe('applySeats', () => {
  it('keeps the creates that fit in plan order, counts reactivations first, and holds the rest as no-free-seat', () => {
    const base = plan([idp('1', 'a@x.test'), idp('2', 'b@x.test'), idp('3', 'c@x.test'), idp('4', 'old@x.test')], [tv('u9', 'old@x.test', false)]);
    expect(base.operations.map((o) => o.kind).sort()).toEqual(['createUser', 'createUser', 'createUser', 'reactivateUser']);
    const seated = applySeats(base, { total: 10, used: 7, free: 3 });
    const creates = seated.operations.filter((o) => o.kind === 'createUser').map((o) => o.email);
    const planned = base.operations.filter((o) => o.kind === 'createUser').map((o) => o.email);
    // 3 free, 1 taken by the reactivation: the first 2 creates run.
    expect(creates).toEqual(planned.slice(0, 2));
    expect(seated.operations.some((o) => o.kind === 'reactivateUser')).toBe(true);
    expect(seated.skipped.map((s) => [s.email, s.reason])).toEqual([[planned[2], 'no-free-seat']]);
    expect(seated.summary.operations.createUser).toBe(2);
    expect(seated.summary.skipped['no-free-seat']).toBe(1);
    expect(seated.seats).toEqual({ total: 10, used: 7, free: 3, waiting: 1 });
    expect(seated.notices.at(-1)).toMatch(/^1 create waits for a free seat/);
    // The input plan is left as it was.
    expect(base.operations).toHaveLength(4);
  });

  it('changes nothing but the seat record when every create fits', () => {
    const base = plan([idp('1', 'a@x.test')]);
    const seated = applySeats(base, { total: 2, used: 0, free: 2 });
    expect(seated.operations).toEqual(base.operations);
    expect(seated.notices).toEqual(base.notices);
    expect(seated.seats?.waiting).toBe(0);
  });
});

describe('SSO health', () => {
  it('counts active users whose status is not Active, per status name, leaving out break-glass addresses', () => {
    const health = summariseSso(
      [
        { email: 'b@x.test', active: true, ssoStatus: 6 },
        { email: 'a@x.test', active: true, ssoStatus: 3 },
        { email: 'ok@x.test', active: true, ssoStatus: 1 },
        { email: 'off@x.test', active: false, ssoStatus: 6 },
        { email: 'glass@x.test', active: true, ssoStatus: 2 },
        { email: 'none@x.test', active: true },
        { email: 'new@x.test', active: true, ssoStatus: 9 },
      ],
      ['Glass@X.test'],
      3,
    );
    expect(health.notActive).toEqual({ NotValidated: 1, NotIncluded: 1, Unknown: 1, 'status-9': 1 });
    expect(health.users).toEqual([
      { email: 'a@x.test', status: 'NotValidated' },
      { email: 'b@x.test', status: 'NotIncluded' },
      { email: 'new@x.test', status: 'status-9' },
    ]);
  });

  it('adds a break-glass address only when missing, and never one on the inclusion list', () => {
    expect(planBreakGlass(['a@x.test', 'B@x.test', 'c@x.test', 'a@x.test'], { exclusion: ['b@x.test'], inclusion: ['C@X.TEST'] })).toEqual({
      add: ['a@x.test'],
      present: ['B@x.test'],
      onInclusionList: ['c@x.test'],
      includedGroups: [],
    });
    expect(planBreakGlass(['a@x.test'], { exclusion: [], inclusion: ['ug-42'] }).includedGroups).toEqual(['ug-42']);
  });
});
