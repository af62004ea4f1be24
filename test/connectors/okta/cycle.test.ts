import type nock from 'nock';
import { describe, expect, it } from 'vitest';
import { DEFAULT_BACKOFF } from '../../../src/net/retry.js';
import { provisioned, runCycle, useConnectorCycle, userWrites } from '../../support/cycle.js';
import { appGroup, appUser, oktaGroup, oktaUser, paged, rateHeaders, type OktaFake, type OktaStatus } from '../../support/okta-fake.js';

/*
 * A whole cycle with Okta as the source: the daemon's own Okta connector talks to a nock'd Okta org
 * (two records a page, Link-header paging), the runtime runs on real Redis, TeamViewer is the emulator.
 */

const fake: OktaFake = { org: 'https://tvsync-cycle.okta.com', token: '00aCycleApiToken_Xy7', appId: '0oa1tvsynccycle01' };
const SYNC = 'okta-corp';
const USERS_PATH = `/api/v1/apps/${fake.appId}/users`;

const support = oktaGroup(fake, '00g1support', 'Support');
const user = (id: string, name: string, status: OktaStatus = 'ACTIVE') => oktaUser(fake, id, name, status);

/** Alice and Dave assigned directly; Bob, Carol (suspended) and Erin through the Support group. */
function directory(overrides: { daveStatus?: OktaStatus } = {}) {
  return {
    alice: user('00u1alice', 'Alice Archer'),
    bob: user('00u2bob', 'Bob Baker'),
    carol: user('00u3carol', 'Carol Clark', 'SUSPENDED'),
    dave: user('00u4dave', 'Dave Dunn', overrides.daveStatus),
    erin: user('00u5erin', 'Erin Evans'),
  };
}

/** What a full read of the app scope asks Okta for; pages of two. */
function mockRead(dir: ReturnType<typeof directory>): nock.Scope[] {
  return [
    ...paged(fake, USERS_PATH, { limit: '2', expand: 'user' }, [
      [appUser(fake, dir.alice), appUser(fake, dir.bob, 'GROUP')],
      [appUser(fake, dir.carol, 'GROUP'), appUser(fake, dir.dave)],
      [appUser(fake, dir.erin, 'GROUP')],
    ]),
    ...paged(fake, `/api/v1/apps/${fake.appId}/groups`, { limit: '20', expand: 'group' }, [[appGroup(fake, support)]]),
    ...paged(fake, `/api/v1/groups/${support.id}/users`, { limit: '2' }, [[dir.bob, dir.carol], [dir.erin]]),
  ];
}

const allDone = (scopes: nock.Scope[]) => scopes.every((s) => s.isDone());

const setUpCycle = useConnectorCycle(SYNC);

function setUp(name: string) {
  const source = `      type: okta
      orgUrl: ${fake.org}
      auth: { method: apiToken, apiToken: "\${OKTA_TOKEN}" }
      scope: { mode: app, appId: ${fake.appId} }
      pageSize: 2`;
  return setUpCycle(name, source, { OKTA_TOKEN: fake.token });
}

const EXPECTED_AFTER_FIRST = [
  { userName: 'alice.archer@example.com', displayName: 'Alice Archer', active: true },
  { userName: 'bob.baker@example.com', displayName: 'Bob Baker', active: true },
  { userName: 'dave.dunn@example.com', displayName: 'Dave Dunn', active: true },
  { userName: 'erin.evans@example.com', displayName: 'Erin Evans', active: true },
];
const NONE = { planned: 0, applied: 0, failed: 0, cancelled: 0 };

describe('a sync cycle with Okta as the source', () => {
  it('provisions the assigned users, writes nothing when Okta says the same, and deactivates a suspended user', async () => {
    const { tv, daemon } = await setUp('okta-cycle');

    const firstRead = mockRead(directory());
    const first = await runCycle(daemon, SYNC);
    expect(first.outcome, JSON.stringify(first.failure)).toBe('succeeded');
    expect(allDone(firstRead)).toBe(true);
    expect(first.operations.createUser).toEqual({ planned: 4, applied: 4, failed: 0, cancelled: 0 });
    expect(first.skipped).toEqual([expect.objectContaining({ reason: 'inactive-not-in-teamviewer', email: 'carol.clark@example.com' })]);
    expect(provisioned(tv.emulator)).toEqual(EXPECTED_AFTER_FIRST);

    const writes = tv.emulator.stats.writes;
    const sameRead = mockRead(directory());
    const second = await runCycle(daemon, SYNC);
    expect(second.outcome).toBe('succeeded');
    expect(allDone(sameRead)).toBe(true);
    expect(second.summary?.unchanged).toBe(4);
    expect(second.operations).toMatchObject({ createUser: NONE, updateUser: NONE, reactivateUser: NONE, deactivateUser: NONE });
    expect(tv.emulator.stats.writes).toBe(writes);

    tv.emulator.resetStats();
    const suspended = mockRead(directory({ daveStatus: 'SUSPENDED' }));
    const third = await runCycle(daemon, SYNC);
    expect(third.outcome).toBe('succeeded');
    expect(allDone(suspended)).toBe(true);
    expect(third.operations).toMatchObject({
      createUser: NONE,
      updateUser: NONE,
      reactivateUser: NONE,
      deactivateUser: { planned: 1, applied: 1, failed: 0, cancelled: 0 },
    });
    expect(userWrites(tv.emulator)).toEqual({ create: 0, patch: 1, put: 0 });
    expect(provisioned(tv.emulator)).toEqual(EXPECTED_AFTER_FIRST.map((u) => (u.userName.startsWith('dave.') ? { ...u, active: false } : u)));
  });

  it('fails the cycle as source-read when a later page stays rate-limited, and deactivates nobody', async () => {
    const { tv, daemon } = await setUp('okta-cycle-fail');
    mockRead(directory());
    expect((await runCycle(daemon, SYNC)).outcome).toBe('succeeded');
    expect(provisioned(tv.emulator)).toEqual(EXPECTED_AFTER_FIRST);

    tv.emulator.resetStats();
    const dir = directory();
    // Page 2 answers 429 with a bucket that resets at once: retried without waiting, until the attempts run out.
    const [firstPage, throttled, lastPage] = paged(fake, USERS_PATH, { limit: '2', expand: 'user' }, [
      [appUser(fake, dir.alice), appUser(fake, dir.bob, 'GROUP')],
      (request) =>
        request
          .times(DEFAULT_BACKOFF.attempts)
          .reply(429, { errorCode: 'E0000047', errorSummary: 'API call exceeded rate limit due to too many requests.', errorCauses: [] }, rateHeaders(0)),
      [appUser(fake, dir.erin, 'GROUP')],
    ]);

    const second = await runCycle(daemon, SYNC);
    expect(firstPage?.isDone()).toBe(true);
    expect(throttled?.isDone()).toBe(true);
    expect(lastPage?.isDone()).toBe(false);
    expect(second.outcome).toBe('failed');
    expect(second.failure).toMatchObject({ failureClass: 'source-read', message: expect.stringMatching(/nothing was deactivated.*answered 429 \(E0000047/) });
    expect(Object.values(second.operations).every((c) => c.planned === 0)).toBe(true);
    expect(tv.emulator.stats.writes).toBe(0);
    expect(provisioned(tv.emulator)).toEqual(EXPECTED_AFTER_FIRST);
  });
});
