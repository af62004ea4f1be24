import nock from 'nock';

/** Okta Management API answers in their wire format, for nock. */

export type OktaStatus = 'STAGED' | 'PROVISIONED' | 'ACTIVE' | 'RECOVERY' | 'LOCKED_OUT' | 'PASSWORD_EXPIRED' | 'SUSPENDED' | 'DEPROVISIONED';

export interface OktaFake {
  org: string;
  token: string;
  appId: string;
}

/** A user as GET /api/v1/users and /api/v1/groups/{id}/users return it. */
export function oktaUser(fake: OktaFake, id: string, name: string, status: OktaStatus = 'ACTIVE') {
  const [firstName, lastName] = name.split(' ');
  const login = `${name.toLowerCase().replace(/ /g, '.')}@example.com`;
  return {
    id,
    status,
    created: '2026-01-05T09:00:00.000Z',
    activated: status === 'STAGED' ? null : '2026-01-05T09:00:01.000Z',
    statusChanged: '2026-01-05T09:00:01.000Z',
    lastLogin: null,
    lastUpdated: '2026-10-01T10:00:00.000Z',
    passwordChanged: null,
    type: { id: 'oty1defaulttype0001' },
    profile: { firstName, lastName, displayName: name, mobilePhone: null, secondEmail: null, login, email: login },
    credentials: { provider: { type: 'OKTA', name: 'OKTA' } },
    _links: { self: { href: `${fake.org}/api/v1/users/${id}` } },
  };
}
export type OktaUserRecord = ReturnType<typeof oktaUser>;

/** An app assignment as GET /api/v1/apps/{appId}/users?expand=user returns it. */
export function appUser(fake: OktaFake, user: OktaUserRecord, scope: 'USER' | 'GROUP' = 'USER') {
  return {
    id: user.id,
    externalId: null,
    created: '2026-02-01T08:00:00.000Z',
    lastUpdated: '2026-02-01T08:00:00.000Z',
    scope,
    status: 'PROVISIONED',
    statusChanged: '2026-02-01T08:00:00.000Z',
    passwordChanged: null,
    syncState: 'SYNCHRONIZED',
    credentials: { userName: user.profile.login },
    profile: { email: user.profile.email, given_name: user.profile.firstName, family_name: user.profile.lastName },
    _links: { app: { href: `${fake.org}/api/v1/apps/${fake.appId}` }, user: { href: `${fake.org}/api/v1/users/${user.id}` } },
    _embedded: { user },
  };
}

export function oktaGroup(fake: OktaFake, id: string, name: string) {
  return {
    id,
    created: '2026-01-01T00:00:00.000Z',
    lastUpdated: '2026-01-01T00:00:00.000Z',
    lastMembershipUpdated: '2026-09-01T00:00:00.000Z',
    objectClass: ['okta:user_group'],
    type: 'OKTA_GROUP',
    profile: { name, description: null },
    _links: { self: { href: `${fake.org}/api/v1/groups/${id}` }, users: { href: `${fake.org}/api/v1/groups/${id}/users` } },
  };
}

/** A group assignment as GET /api/v1/apps/{appId}/groups?expand=group returns it. */
export function appGroup(fake: OktaFake, group: ReturnType<typeof oktaGroup>) {
  return {
    id: group.id,
    lastUpdated: '2026-02-01T08:00:00.000Z',
    priority: 0,
    profile: {},
    _links: { app: { href: `${fake.org}/api/v1/apps/${fake.appId}` }, group: { href: `${fake.org}/api/v1/groups/${group.id}` } },
    _embedded: { group },
  };
}

/** Okta's rate-limit headers; `remaining` 0 with a reset in this second is a bucket that is used up and resets now. */
export function rateHeaders(remaining = 599): Record<string, string> {
  const seconds = Math.floor(Date.now() / 1000);
  return {
    'x-rate-limit-limit': '600',
    'x-rate-limit-remaining': String(remaining),
    'x-rate-limit-reset': String(remaining > 0 ? seconds + 60 : seconds),
    date: new Date(seconds * 1000).toUTCString(),
  };
}

/** An answer of one page: its records, or a custom answer (a failure) for that request. */
export type PageAnswer = unknown[] | ((request: nock.Interceptor) => nock.Scope);

/** A listing page by page, with Okta's self and next Link headers and `after` cursors; one scope per page. */
export function paged(fake: OktaFake, path: string, query: Record<string, string>, pages: PageAnswer[]): nock.Scope[] {
  return pages.map((answer, i) => {
    const here = i === 0 ? query : { ...query, after: `cursor${i}` };
    const request = nock(fake.org).matchHeader('authorization', `SSWS ${fake.token}`).get(path).query(here);
    if (typeof answer === 'function') return answer(request);
    const links = [`<${fake.org}${path}?${new URLSearchParams(here)}>; rel="self"`];
    if (i < pages.length - 1) links.push(`<${fake.org}${path}?${new URLSearchParams({ ...query, after: `cursor${i + 1}` })}>; rel="next"`);
    return request.reply(200, answer, { 'content-type': 'application/json', link: links, ...rateHeaders() });
  });
}
