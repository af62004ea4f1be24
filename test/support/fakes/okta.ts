import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FakeIdp } from './fake-idp.js';

/*
 * A stateful Okta org on 127.0.0.1: the Management API endpoints tvsync's okta source reads (app
 * users and groups, users, groups and their members, a user's groups, the System Log), in Okta's
 * wire format with Link-header paging and rate-limit headers. Every change is written to the System
 * Log as Okta writes it, and POSTed to a registered event hook right after.
 */

type Status = 'STAGED' | 'PROVISIONED' | 'ACTIVE' | 'SUSPENDED' | 'DEPROVISIONED';

interface FakeUser {
  id: string;
  status: Status;
  created: string;
  lastUpdated: string;
  profile: { login: string; email: string; firstName: string; lastName: string; displayName: string };
}

interface FakeGroup {
  id: string;
  name: string;
  members: Set<string>;
}

export interface OktaLogTarget {
  id: string;
  type: string;
  alternateId: string;
  displayName: string;
}

/** A System Log event, as GET /api/v1/logs and event hooks carry it. */
export interface OktaLogRecord {
  uuid: string;
  published: string;
  eventType: string;
  version: string;
  severity: string;
  displayMessage: string;
  actor: OktaLogTarget;
  client: Record<string, unknown>;
  outcome: { result: string; reason: string | null };
  target: OktaLogTarget[];
  transaction: { type: string; id: string; detail: Record<string, unknown> };
  legacyEventType: string | null;
}

export interface OktaFakeIdp extends FakeIdp {
  readonly token: string;
  readonly appId: string;
  /** Values for the `${…}` references in `sourceConfig()` (the loader takes secrets only from the environment). */
  readonly env: Record<string, string>;
  /**
   * Registers an event hook as an Okta admin would: Okta first verifies it (GET with
   * x-okta-verification-challenge, expecting the value echoed back), then POSTs every later change.
   */
  registerEventHook(url: string, headerName: string, secret: string): Promise<void>;
  /** The System Log so far. */
  events(): OktaLogRecord[];
  /** Deliveries to the event hook: answered status per POST. */
  hookDeliveries(): number[];
  /** Waits for event hook deliveries still under way. */
  hooksSettled(): Promise<void>;
  /** Renames a group (group.profile.update). */
  renameGroup(groupId: string, name: string): Promise<{ atMs: number }>;
  /** Okta's "deactivate": DEPROVISIONED, and the user's app assignment is dropped. */
  deprovision(id: string): Promise<{ atMs: number }>;
  /** Assigns an existing group to the app (or unassigns it). */
  setGroupAssigned(groupId: string, assigned: boolean): Promise<{ atMs: number }>;
  /** The user's record as the API returns it (undefined once deleted). */
  user(id: string): Record<string, unknown> | undefined;
}

const ADMIN: OktaLogTarget = { id: '00uFakeAdmin0001', type: 'User', alternateId: 'admin@fake-okta.example', displayName: 'Fake Admin' };
const MESSAGES: Record<string, string> = {
  'user.lifecycle.create': 'Create Okta user',
  'user.lifecycle.activate': 'Activate Okta user',
  'user.lifecycle.deactivate': 'Deactivate Okta user',
  'user.lifecycle.suspend': 'Suspend Okta user',
  'user.lifecycle.unsuspend': 'Unsuspend Okta user',
  'user.lifecycle.delete.initiated': 'Delete Okta user',
  'user.account.update_profile': 'Update user profile for Okta',
  'application.user_membership.add': 'Add user to application membership',
  'application.user_membership.remove': 'Remove user from application membership',
  'group.user_membership.add': 'Add user to group membership',
  'group.user_membership.remove': 'Remove user from group membership',
  'group.lifecycle.create': 'Create okta group',
  'group.profile.update': 'Update group profile',
  'group.application_assignment.add': 'Add assigned application to group',
  'group.application_assignment.remove': 'Remove assigned application from group',
};

function okId(prefix: string): string {
  return `${prefix}${randomBytes(8).toString('hex').slice(0, 17)}`;
}

export async function startOktaFake(opts: { appId?: string; token?: string } = {}): Promise<OktaFakeIdp> {
  const appId = opts.appId ?? '0oaFakeTeamViewer1';
  const token = opts.token ?? `00fake${randomBytes(12).toString('hex')}`;
  const users = new Map<string, FakeUser>();
  const groups = new Map<string, FakeGroup>();
  const directAssignments = new Set<string>();
  const appGroups = new Set<string>();
  const log: OktaLogRecord[] = [];
  const counts: Record<string, number> = {};
  const deliveries: number[] = [];
  const inFlight = new Set<Promise<void>>();
  let hook: { url: string; headerName: string; secret: string } | undefined;
  let outage = false;
  let lastPublished = 0;
  let origin = '';

  const userTarget = (u: FakeUser): OktaLogTarget => ({ id: u.id, type: 'User', alternateId: u.profile.login, displayName: u.profile.displayName });
  const groupTarget = (g: FakeGroup): OktaLogTarget => ({ id: g.id, type: 'UserGroup', alternateId: 'unknown', displayName: g.name });
  const appTarget: OktaLogTarget = { id: appId, type: 'AppInstance', alternateId: 'TeamViewer', displayName: 'TeamViewer' };

  function deliver(event: OktaLogRecord): void {
    if (!hook) return;
    const { url, headerName, secret } = hook;
    const body = JSON.stringify({
      eventType: 'com.okta.event_hook',
      eventTypeVersion: '1.0',
      cloudEventsVersion: '0.1',
      source: `${origin}/api/v1/eventHooks/whoFakeHook0001`,
      eventId: randomUUID(),
      data: { events: [event] },
      eventTime: new Date().toISOString(),
      contentType: 'application/json',
    });
    const sent = fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', [headerName]: secret }, body })
      .then(async (res) => {
        await res.text();
        deliveries.push(res.status);
      })
      .catch(() => {
        deliveries.push(0);
      });
    inFlight.add(sent);
    void sent.finally(() => inFlight.delete(sent));
  }

  /** Writes an event (published times never go backwards, and several may share a millisecond). */
  function record(eventType: string, target: OktaLogTarget[], at: number): OktaLogRecord {
    const event: OktaLogRecord = {
      uuid: randomUUID(),
      published: new Date(at).toISOString(),
      eventType,
      version: '0',
      severity: 'INFO',
      displayMessage: MESSAGES[eventType] ?? eventType,
      actor: ADMIN,
      client: { userAgent: { rawUserAgent: 'fake-okta', os: 'Unknown', browser: 'UNKNOWN' }, zone: 'null', device: 'Unknown', ipAddress: '127.0.0.1' },
      outcome: { result: 'SUCCESS', reason: null },
      target,
      transaction: { type: 'WEB', id: randomBytes(8).toString('hex'), detail: {} },
      legacyEventType: null,
    };
    log.push(event);
    deliver(event);
    return event;
  }

  /** One change: its events share one published time, returned for latency figures. */
  function change(events: [string, OktaLogTarget[]][]): { atMs: number } {
    const at = Math.max(Date.now(), lastPublished);
    lastPublished = at;
    for (const [type, target] of events) record(type, target, at);
    return { atMs: at };
  }

  const mustUser = (id: string): FakeUser => {
    const u = users.get(id);
    if (!u) throw new Error(`fake Okta has no user ${id}`);
    return u;
  };
  const mustGroup = (id: string): FakeGroup => {
    const g = groups.get(id);
    if (!g) throw new Error(`fake Okta has no group ${id}`);
    return g;
  };
  const touch = (u: FakeUser) => {
    u.lastUpdated = new Date().toISOString();
  };

  // --- wire format ---
  const wireUser = (u: FakeUser) => ({
    id: u.id,
    status: u.status,
    created: u.created,
    activated: u.status === 'STAGED' ? null : u.created,
    statusChanged: u.lastUpdated,
    lastLogin: null,
    lastUpdated: u.lastUpdated,
    passwordChanged: null,
    type: { id: 'otyFakeDefault0001' },
    profile: { ...u.profile, mobilePhone: null, secondEmail: null },
    credentials: { provider: { type: 'OKTA', name: 'OKTA' } },
    _links: { self: { href: `${origin}/api/v1/users/${u.id}` } },
  });
  const wireGroup = (g: FakeGroup) => ({
    id: g.id,
    created: '2026-01-01T00:00:00.000Z',
    lastUpdated: '2026-01-01T00:00:00.000Z',
    lastMembershipUpdated: '2026-01-01T00:00:00.000Z',
    objectClass: ['okta:user_group'],
    type: 'OKTA_GROUP',
    profile: { name: g.name, description: null },
    _links: { self: { href: `${origin}/api/v1/groups/${g.id}` }, users: { href: `${origin}/api/v1/groups/${g.id}/users` } },
  });
  /** How a user holds the app: directly, else through the first assigned group they are in. */
  const assignmentOf = (u: FakeUser): { scope: 'USER' } | { scope: 'GROUP'; group: FakeGroup } | undefined => {
    if (directAssignments.has(u.id)) return { scope: 'USER' };
    for (const id of appGroups) {
      const g = groups.get(id);
      if (g?.members.has(u.id)) return { scope: 'GROUP', group: g };
    }
    return undefined;
  };
  const wireAppUser = (u: FakeUser, expand: boolean) => {
    const how = assignmentOf(u);
    return {
      id: u.id,
      externalId: null,
      created: u.created,
      lastUpdated: u.lastUpdated,
      scope: how?.scope ?? 'USER',
      status: 'PROVISIONED',
      statusChanged: u.lastUpdated,
      passwordChanged: null,
      syncState: 'DISABLED',
      credentials: { userName: u.profile.login },
      profile: { email: u.profile.email },
      _links: {
        app: { href: `${origin}/api/v1/apps/${appId}` },
        user: { href: `${origin}/api/v1/users/${u.id}` },
        ...(how?.scope === 'GROUP' ? { group: { name: how.group.name, href: `${origin}/api/v1/groups/${how.group.id}` } } : {}),
      },
      ...(expand ? { _embedded: { user: wireUser(u) } } : {}),
    };
  };

  function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string | string[]> = {}): void {
    const seconds = Math.floor(Date.now() / 1000);
    res.writeHead(status, {
      'content-type': 'application/json',
      date: new Date(seconds * 1000).toUTCString(),
      'x-rate-limit-limit': '600',
      'x-rate-limit-remaining': '599',
      'x-rate-limit-reset': String(seconds + 60),
      ...headers,
    });
    res.end(JSON.stringify(body));
  }
  const notFound = (res: ServerResponse, what: string) =>
    send(res, 404, {
      errorCode: 'E0000007',
      errorSummary: `Not found: Resource not found: ${what} (User)`,
      errorLink: 'E0000007',
      errorId: randomUUID(),
      errorCauses: [],
    });

  /** A listing page from `after` (an offset here; opaque to the client), with Okta's self and next links. */
  function page(res: ServerResponse, url: URL, items: unknown[], alwaysNext = false): void {
    const limit = Math.max(1, Number(url.searchParams.get('limit') ?? '200'));
    const start = Number(url.searchParams.get('after') ?? '0');
    const slice = items.slice(start, start + limit);
    const links = [`<${origin}${url.pathname}${url.search}>; rel="self"`];
    const end = start + slice.length;
    if (end < items.length || alwaysNext) {
      const next = new URLSearchParams(url.searchParams);
      next.set('after', String(end));
      links.push(`<${origin}${url.pathname}?${next}>; rel="next"`);
    }
    send(res, 200, slice, { link: links });
  }

  const bump = (label: string) => {
    counts[label] = (counts[label] ?? 0) + 1;
  };

  function logs(res: ServerResponse, url: URL): void {
    const since = Date.parse(url.searchParams.get('since') ?? new Date(Date.now() - 7 * 86_400_000).toISOString());
    const types = [...(url.searchParams.get('filter') ?? '').matchAll(/eventType eq "([^"]+)"/g)].map((m) => m[1]);
    const descending = url.searchParams.get('sortOrder') === 'DESCENDING';
    let matching = log.filter((e) => Date.parse(e.published) >= since && (types.length === 0 || types.includes(e.eventType)));
    if (descending) matching = matching.reverse();
    // A polling query (ascending, no until) always links a next page, as Okta does.
    page(res, url, matching, !descending && !url.searchParams.has('until'));
  }

  function route(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', origin);
    const path = url.pathname;
    if (req.headers.authorization !== `SSWS ${token}`) {
      bump('refused');
      send(res, 401, { errorCode: 'E0000011', errorSummary: 'Invalid token provided', errorLink: 'E0000011', errorId: randomUUID(), errorCauses: [] });
      return;
    }
    if (req.method !== 'GET') {
      send(res, 405, { errorCode: 'E0000022', errorSummary: 'The endpoint does not support the provided HTTP method', errorCauses: [] });
      return;
    }
    const ref = (re: RegExp): string | undefined => {
      const hit = re.exec(path)?.[1];
      return hit === undefined ? undefined : decodeURIComponent(hit);
    };
    const appUserRef = ref(new RegExp(`^/api/v1/apps/${appId}/users/([^/]+)$`));
    const groupUsersRef = ref(/^\/api\/v1\/groups\/([^/]+)\/users$/);
    const groupRef = ref(/^\/api\/v1\/groups\/([^/]+)$/);
    const userGroupsRef = ref(/^\/api\/v1\/users\/([^/]+)\/groups$/);
    const userRef = ref(/^\/api\/v1\/users\/([^/]+)$/);
    const label = (name: string) => {
      bump(name);
      if (outage) {
        send(res, 503, { errorCode: 'E0000010', errorSummary: 'Service is temporarily unavailable', errorCauses: [] }, { 'retry-after': '1' });
        return false;
      }
      return true;
    };
    const appBase = `/api/v1/apps/${appId}`;
    if (path === '/api/v1/logs') {
      if (label('logs')) logs(res, url);
    } else if (path === `${appBase}/users`) {
      if (!label('app-users')) return;
      const expand = url.searchParams.get('expand') === 'user';
      const assigned = [...users.values()].filter((u) => assignmentOf(u));
      page(
        res,
        url,
        assigned.map((u) => wireAppUser(u, expand)),
      );
    } else if (path === appBase) {
      if (label('app')) send(res, 200, { id: appId, name: 'teamviewer', label: 'TeamViewer', status: 'ACTIVE', signOnMode: 'SAML_2_0' });
    } else if (appUserRef !== undefined) {
      if (!label('app-user')) return;
      const u = users.get(appUserRef);
      if (u && assignmentOf(u)) send(res, 200, wireAppUser(u, false));
      else notFound(res, appUserRef);
    } else if (path === `${appBase}/groups`) {
      if (!label('app-groups')) return;
      const expand = url.searchParams.get('expand') === 'group';
      const assigned = [...appGroups].map((id) => mustGroup(id));
      page(
        res,
        url,
        assigned.map((g) => ({
          id: g.id,
          lastUpdated: '2026-01-01T00:00:00.000Z',
          priority: 0,
          profile: {},
          _links: { app: { href: `${origin}${appBase}` }, group: { href: `${origin}/api/v1/groups/${g.id}` } },
          ...(expand ? { _embedded: { group: wireGroup(g) } } : {}),
        })),
      );
    } else if (groupUsersRef !== undefined) {
      if (!label('group-users')) return;
      const g = groups.get(groupUsersRef);
      if (!g) notFound(res, groupUsersRef);
      else
        page(
          res,
          url,
          [...g.members].map((id) => wireUser(mustUser(id))),
        );
    } else if (groupRef !== undefined) {
      if (!label('group')) return;
      const g = groups.get(groupRef);
      if (g) send(res, 200, wireGroup(g));
      else notFound(res, groupRef);
    } else if (userGroupsRef !== undefined) {
      if (!label('user-groups')) return;
      const id = userGroupsRef;
      if (!users.has(id)) notFound(res, id);
      else page(res, url, [...groups.values()].filter((g) => g.members.has(id)).map(wireGroup));
    } else if (userRef !== undefined) {
      if (!label('user')) return;
      const u = users.get(userRef) ?? [...users.values()].find((x) => x.profile.login.toLowerCase() === userRef.toLowerCase());
      if (u) send(res, 200, wireUser(u));
      else notFound(res, userRef);
    } else if (path === '/api/v1/users') {
      if (!label('users')) return;
      let found = [...users.values()];
      const search = /^profile\.email eq "([^"]*)"$/.exec(url.searchParams.get('search') ?? '');
      if (search) found = found.filter((u) => u.profile.email.toLowerCase() === (search[1] ?? '').toLowerCase());
      const after = /^lastUpdated gt "([^"]+)"$/.exec(url.searchParams.get('filter') ?? '');
      if (after) found = found.filter((u) => Date.parse(u.lastUpdated) > Date.parse(after[1] ?? ''));
      page(res, url, found.map(wireUser));
    } else {
      bump('other');
      notFound(res, path);
    }
  }

  const server = createServer((req, res) => {
    try {
      route(req, res);
    } catch (err) {
      send(res, 500, { errorCode: 'E0000009', errorSummary: `Internal Server Error: ${String(err)}`, errorCauses: [] });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const leaveAppGroups = (u: FakeUser): [string, OktaLogTarget[]][] =>
    [...appGroups]
      .map((id) => mustGroup(id))
      .filter((g) => g.members.delete(u.id))
      .map((g) => ['group.user_membership.remove', [userTarget(u), groupTarget(g)]]);

  return {
    kind: 'okta',
    url: origin,
    token,
    appId,
    env: { OKTA_FAKE_TOKEN: token },
    sourceConfig(changes = {}) {
      return {
        type: 'okta',
        orgUrl: origin,
        auth: { method: 'apiToken', apiToken: '${OKTA_FAKE_TOKEN}' },
        scope: { mode: 'app', appId },
        changes,
      };
    },
    async createUser(p) {
      const id = okId('00u');
      const login = p.email;
      const displayName = `${p.givenName} ${p.familyName}`;
      const now = new Date().toISOString();
      const u: FakeUser = {
        id,
        status: p.active === false ? 'SUSPENDED' : 'ACTIVE',
        created: now,
        lastUpdated: now,
        profile: { login, email: p.email, firstName: p.givenName, lastName: p.familyName, displayName },
      };
      users.set(id, u);
      const events: [string, OktaLogTarget[]][] = [
        ['user.lifecycle.create', [userTarget(u)]],
        ['user.lifecycle.activate', [userTarget(u)]],
      ];
      if (p.active === false) events.push(['user.lifecycle.suspend', [userTarget(u)]]);
      if (p.inScope !== false) {
        directAssignments.add(id);
        events.push(['application.user_membership.add', [userTarget(u), appTarget]]);
      }
      return { id, ...change(events) };
    },
    async setActive(id, active) {
      const u = mustUser(id);
      u.status = active ? 'ACTIVE' : 'SUSPENDED';
      touch(u);
      return change([[active ? 'user.lifecycle.unsuspend' : 'user.lifecycle.suspend', [userTarget(u)]]]);
    },
    async rename(id, givenName, familyName) {
      const u = mustUser(id);
      u.profile = { ...u.profile, firstName: givenName, lastName: familyName, displayName: `${givenName} ${familyName}` };
      touch(u);
      return change([['user.account.update_profile', [userTarget(u)]]]);
    },
    async setInScope(id, inScope) {
      const u = mustUser(id);
      if (inScope) {
        directAssignments.add(id);
        return change([['application.user_membership.add', [userTarget(u), appTarget]]]);
      }
      directAssignments.delete(id);
      return change([['application.user_membership.remove', [userTarget(u), appTarget]], ...leaveAppGroups(u)]);
    },
    async deprovision(id) {
      const u = mustUser(id);
      u.status = 'DEPROVISIONED';
      touch(u);
      const had = directAssignments.delete(id);
      return change([
        ['user.lifecycle.deactivate', [userTarget(u)]],
        ...(had ? [['application.user_membership.remove', [userTarget(u), appTarget]] as [string, OktaLogTarget[]]] : []),
      ]);
    },
    async deleteUser(id) {
      const u = mustUser(id);
      users.delete(id);
      directAssignments.delete(id);
      for (const g of groups.values()) g.members.delete(id);
      const events: [string, OktaLogTarget[]][] = [];
      if (u.status !== 'DEPROVISIONED') events.push(['user.lifecycle.deactivate', [userTarget(u)]]);
      events.push(['user.lifecycle.delete.initiated', [userTarget(u)]]);
      return change(events);
    },
    async createGroup(name) {
      const g: FakeGroup = { id: okId('00g'), name, members: new Set() };
      groups.set(g.id, g);
      appGroups.add(g.id);
      return {
        id: g.id,
        ...change([
          ['group.lifecycle.create', [groupTarget(g)]],
          ['group.application_assignment.add', [appTarget, groupTarget(g)]],
        ]),
      };
    },
    async setGroupAssigned(groupId, assigned) {
      const g = mustGroup(groupId);
      if (assigned) appGroups.add(groupId);
      else appGroups.delete(groupId);
      return change([[assigned ? 'group.application_assignment.add' : 'group.application_assignment.remove', [appTarget, groupTarget(g)]]]);
    },
    async renameGroup(groupId, name) {
      const g = mustGroup(groupId);
      g.name = name;
      return change([['group.profile.update', [groupTarget(g)]]]);
    },
    async addMember(groupId, userId) {
      const g = mustGroup(groupId);
      const u = mustUser(userId);
      g.members.add(userId);
      return change([['group.user_membership.add', [userTarget(u), groupTarget(g)]]]);
    },
    async removeMember(groupId, userId) {
      const g = mustGroup(groupId);
      const u = mustUser(userId);
      g.members.delete(userId);
      return change([['group.user_membership.remove', [userTarget(u), groupTarget(g)]]]);
    },
    setOutage(on) {
      outage = on;
    },
    requestCounts() {
      return { ...counts };
    },
    async registerEventHook(url, headerName, secret) {
      const challenge = randomBytes(16).toString('base64url');
      const res = await fetch(url, { headers: { [headerName]: secret, 'x-okta-verification-challenge': challenge } });
      const body = (await res.json().catch(() => undefined)) as { verification?: unknown } | undefined;
      if (res.status !== 200 || body?.verification !== challenge) throw new Error(`event hook verification failed: ${res.status}`);
      hook = { url, headerName, secret };
    },
    events() {
      return [...log];
    },
    hookDeliveries() {
      return [...deliveries];
    },
    async hooksSettled() {
      while (inFlight.size > 0) await Promise.all([...inFlight]);
    },
    user(id) {
      const u = users.get(id);
      return u ? wireUser(u) : undefined;
    },
    async close() {
      hook = undefined;
      await Promise.all([...inFlight]);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
