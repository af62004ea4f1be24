import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FakeIdp } from './fake-idp.js';

/**
 * A stateful JumpCloud: v1 system users, the v2 graph (application bindings, user groups and their
 * members, a user's groups and applications) and Directory Insights (POST /insights/directory/v1/events),
 * each mutation written there as JumpCloud writes it: user_create / user_update / user_delete with
 * `resource` and `changes`, group_create, and association_change with the edge that was added or
 * removed. Scope is application mode: the users in scope are the members of the user groups bound
 * to the TeamViewer application; "in scope" means a member of the bound group "TeamViewer Users".
 */

export const JUMPCLOUD_FAKE_KEY = 'jc-fake-key-8d1e5b20c4a94f17';
export const JUMPCLOUD_FAKE_APP = '6a00000000000000000000f1';
const ORG = '5c1e000000000000000000fa';

interface User {
  _id: string;
  username: string;
  email: string;
  firstname: string;
  lastname: string;
  displayname: string;
  suspended: boolean;
  activated: boolean;
  password_expired: boolean;
  state: 'ACTIVATED' | 'SUSPENDED' | 'STAGED';
}
interface Group {
  id: string;
  name: string;
  members: Set<string>;
}
interface Event {
  id: string;
  event_type: string;
  timestamp: string;
  ms: number;
  /** When Directory Insights lets it be found (its indexing delay). */
  visibleAtMs: number;
  [key: string]: unknown;
}

export interface JumpcloudFakeOptions {
  /** How long an event takes to become searchable in Directory Insights (default 0). */
  indexDelayMs?: number;
}

export type JumpcloudFake = FakeIdp & {
  readonly applicationId: string;
  readonly scopeGroupId: string;
  /** Binds a user to the application directly (includeDirectUserBindings). */
  bindDirectly(userId: string, bound: boolean): Promise<{ atMs: number }>;
  /** Binds or unbinds a user group to the application. */
  bindGroup(groupId: string, bound: boolean): Promise<{ atMs: number }>;
  renameGroup(groupId: string, name: string): Promise<{ atMs: number }>;
  /** The events recorded so far, as Directory Insights returns them. */
  events(): Record<string, unknown>[];
};

export async function startJumpcloudFake(opts: JumpcloudFakeOptions = {}): Promise<JumpcloudFake> {
  const indexDelay = opts.indexDelayMs ?? 0;
  let counter = 0;
  const newId = (prefix: string) => `${prefix}${(++counter).toString(16).padStart(24 - prefix.length, '0')}`;
  const users = new Map<string, User>();
  const groups = new Map<string, Group>();
  const boundGroups = new Set<string>();
  const directUsers = new Set<string>();
  const events: Event[] = [];
  const counts: Record<string, number> = {};
  let outage = false;
  const admin = { id: '61e536ebdbbe784cb2e55fb5', type: 'admin', email: 'admin@fake.example' };
  const app = { id: JUMPCLOUD_FAKE_APP, name: 'TeamViewer' };

  function record(event_type: string, body: Record<string, unknown>): number {
    // Never earlier than the last event: the feed's order (time, then id) is the order of the changes.
    const ms = Math.max(Date.now(), events.at(-1)?.ms ?? 0);
    events.push({
      id: newId('e'),
      event_type,
      timestamp: new Date(ms).toISOString(),
      ms,
      visibleAtMs: Date.now() + indexDelay,
      service: 'directory',
      organization: ORG,
      success: true,
      initiated_by: admin,
      auth_method: 'session',
      client_ip: '192.0.2.10',
      ...body,
    });
    return ms;
  }
  const userResource = (u: User) => ({ id: u._id, type: 'user', username: u.username, email: u.email });
  const end = (type: string, object_id: string, name: string) => ({ type, object_id, name });
  function association(op: 'add' | 'remove', from: ReturnType<typeof end>, to: ReturnType<typeof end>): number {
    return record('association_change', { association: { op, action_source: 'manual', connection: { from, to }, attributes: null }, resource: null });
  }
  const groupEnd = (g: Group) => end('user_group', g.id, g.name);
  const userEnd = (u: User) => end('user', u._id, u.username);
  const appEnd = () => end('application', app.id, app.name);

  function groupOf(id: string): Group {
    const g = groups.get(id);
    if (!g) throw new Error(`no group ${id}`);
    return g;
  }
  function userOf(id: string): User {
    const u = users.get(id);
    if (!u) throw new Error(`no user ${id}`);
    return u;
  }
  function setMember(g: Group, u: User, member: boolean): number | undefined {
    if (g.members.has(u._id) === member) return undefined;
    if (member) g.members.add(u._id);
    else g.members.delete(u._id);
    return association(member ? 'add' : 'remove', groupEnd(g), userEnd(u));
  }
  const scopeGroup: Group = { id: newId('64'), name: 'TeamViewer Users', members: new Set() };
  groups.set(scopeGroup.id, scopeGroup);
  boundGroups.add(scopeGroup.id);

  // Graph answers: one edge per hop, from the start object.
  const edge = (from: { id: string; type: string }, to: { id: string; type: string }) => ({
    from: { ...from, attributes: null },
    to: { ...to, attributes: null },
    attributes: null,
  });
  const appNode = { id: app.id, type: 'application' };

  function v2(res: ServerResponse, all: unknown[], query: URLSearchParams) {
    const limit = Number(query.get('limit') ?? 10);
    const skip = Number(query.get('skip') ?? 0);
    send(res, 200, all.slice(skip, skip + limit), { 'x-total-count': String(all.length) });
  }

  function route(req: IncomingMessage, res: ServerResponse, url: URL, body: string) {
    const p = url.pathname;
    const q = url.searchParams;
    if (req.method === 'POST' && p === '/insights/directory/v1/events') {
      count('events');
      const query = JSON.parse(body || '{}') as { start_time?: string; end_time?: string; limit?: number; search_after?: [string, string]; sort?: string };
      const from = query.start_time ? Date.parse(query.start_time) : 0;
      const to = query.end_time ? Date.parse(query.end_time) : Infinity;
      const limit = Math.min(query.limit ?? 10_000, 10_000);
      const now = Date.now();
      let found = events.filter((e) => e.visibleAtMs <= now && e.ms >= from && e.ms <= to);
      if (query.search_after) {
        const [afterMs, afterId] = [Number(query.search_after[0]), String(query.search_after[1])];
        found = found.filter((e) => e.ms > afterMs || (e.ms === afterMs && e.id > afterId));
      }
      const page = found.slice(0, limit);
      const last = page.at(-1);
      const headers: Record<string, string> = { 'X-Result-Count': String(page.length), 'X-Limit': String(limit) };
      if (last) headers['X-Search_After'] = JSON.stringify([String(last.ms), last.id]);
      send(
        res,
        200,
        page.map(({ ms: _ms, visibleAtMs: _v, ...e }) => e),
        headers,
      );
      return;
    }
    if (req.method !== 'GET') return send(res, 405, { message: 'method not allowed' });
    if (p === '/api/systemusers') {
      count('systemusers');
      const filter = q.get('filter');
      let all = [...users.values()].sort((a, b) => (a._id < b._id ? -1 : 1));
      const eq = filter?.match(/^email:\$eq:(.*)$/);
      if (eq) all = all.filter((u) => u.email === eq[1]?.toLowerCase());
      const limit = Number(q.get('limit') ?? 10);
      const skip = Number(q.get('skip') ?? 0);
      return send(res, 200, { totalCount: all.length, results: all.slice(skip, skip + limit) });
    }
    const oneUser = p.match(/^\/api\/systemusers\/([^/]+)$/);
    if (oneUser) {
      const m = oneUser;
      count('systemusers');
      const u = users.get(decodeURIComponent(m[1] ?? ''));
      return u ? send(res, 200, u) : send(res, 404, { message: 'Not Found' });
    }
    const appGraph = p.match(/^\/api\/v2\/applications\/([^/]+)\/(usergroups|users)$/);
    if (appGraph) {
      const m = appGraph;
      count('applications');
      if (m[1] !== app.id) return send(res, 404, { message: 'application not found' });
      if (m[2] === 'usergroups') {
        return v2(
          res,
          [...boundGroups].map((id) => ({ id, type: 'user_group', compiledAttributes: {}, paths: [[edge(appNode, { id, type: 'user_group' })]] })),
          q,
        );
      }
      const reached = new Map<string, unknown[][]>();
      for (const id of directUsers) reached.set(id, [[edge(appNode, { id, type: 'user' })]]);
      for (const gid of boundGroups) {
        for (const id of groupOf(gid).members) {
          const path = [edge(appNode, { id: gid, type: 'user_group' }), edge({ id: gid, type: 'user_group' }, { id, type: 'user' })];
          reached.set(id, [...(reached.get(id) ?? []), path]);
        }
      }
      return v2(
        res,
        [...reached].map(([id, paths]) => ({ id, type: 'user', compiledAttributes: {}, paths })),
        q,
      );
    }
    if (p === '/api/v2/usergroups') {
      count('usergroups');
      return v2(
        res,
        [...groups.values()].map((g) => ({ id: g.id, name: g.name, type: 'user_group' })),
        q,
      );
    }
    const groupPath = p.match(/^\/api\/v2\/usergroups\/([^/]+)(\/members|\/membership)?$/);
    if (groupPath) {
      const m = groupPath;
      count('usergroups');
      const g = groups.get(m[1] ?? '');
      if (!g) return send(res, 404, { message: 'Not Found' });
      const node = { id: g.id, type: 'user_group' };
      if (m[2] === '/members')
        return v2(
          res,
          [...g.members].map((id) => ({ to: { id, type: 'user', attributes: null }, attributes: null })),
          q,
        );
      if (m[2] === '/membership') {
        return v2(
          res,
          [...g.members].map((id) => ({ id, type: 'user', compiledAttributes: {}, paths: [[edge(node, { id, type: 'user' })]] })),
          q,
        );
      }
      return send(res, 200, { id: g.id, name: g.name, type: 'user_group', attributes: null, description: '' });
    }
    const userGraph = p.match(/^\/api\/v2\/users\/([^/]+)\/(memberof|applications)$/);
    if (userGraph) {
      const m = userGraph;
      count(m[2] === 'memberof' ? 'memberof' : 'applications');
      const id = m[1] ?? '';
      if (!users.has(id)) return send(res, 404, { message: 'Not Found' });
      const node = { id, type: 'user' };
      const mine = [...groups.values()].filter((g) => g.members.has(id));
      if (m[2] === 'memberof') {
        return v2(
          res,
          mine.map((g) => ({ id: g.id, type: 'user_group', compiledAttributes: {}, paths: [[edge(node, { id: g.id, type: 'user_group' })]] })),
          q,
        );
      }
      const paths: unknown[][] = [];
      if (directUsers.has(id)) paths.push([edge(node, appNode)]);
      for (const g of mine.filter((g) => boundGroups.has(g.id))) {
        paths.push([edge(node, { id: g.id, type: 'user_group' }), edge({ id: g.id, type: 'user_group' }, appNode)]);
      }
      return v2(res, paths.length > 0 ? [{ id: app.id, type: 'application', compiledAttributes: {}, paths }] : [], q);
    }
    send(res, 404, { message: 'Not Found' });
  }

  function count(label: string) {
    counts[label] = (counts[label] ?? 0) + 1;
  }

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      if (req.headers['x-api-key'] !== JUMPCLOUD_FAKE_KEY) return send(res, 401, { message: 'Unauthorized' });
      if (outage) {
        count('outage');
        return send(res, 503, { message: 'Service Unavailable' });
      }
      try {
        route(req, res, url, Buffer.concat(chunks).toString('utf8'));
      } catch (err) {
        send(res, 500, { message: (err as Error).message });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    kind: 'jumpcloud',
    url,
    applicationId: app.id,
    scopeGroupId: scopeGroup.id,
    sourceConfig(changes = {}) {
      return {
        type: 'jumpcloud',
        apiKey: JUMPCLOUD_FAKE_KEY,
        baseUrl: `${url}/api`,
        scope: { mode: 'application', applicationId: app.id },
        changes,
      };
    },
    async createUser({ email, givenName, familyName, active = true, inScope = true }) {
      const _id = newId('5f');
      const username = email.split('@')[0] ?? email;
      const u: User = {
        _id,
        username,
        email: email.toLowerCase(),
        firstname: givenName,
        lastname: familyName,
        displayname: `${givenName} ${familyName}`,
        suspended: !active,
        activated: true,
        password_expired: false,
        state: active ? 'ACTIVATED' : 'SUSPENDED',
      };
      users.set(_id, u);
      let atMs = record('user_create', { resource: userResource(u), changes: [] });
      if (inScope) atMs = setMember(scopeGroup, u, true) ?? atMs;
      return { id: _id, atMs };
    },
    async setActive(id, active) {
      const u = userOf(id);
      const before = { suspended: u.suspended, state: u.state };
      u.suspended = !active;
      u.state = active ? 'ACTIVATED' : 'SUSPENDED';
      const atMs = record('user_update', {
        resource: userResource(u),
        changes: [
          { field: 'state', from: before.state, to: u.state },
          { field: 'suspended', from: before.suspended, to: u.suspended },
        ],
      });
      return { atMs };
    },
    async rename(id, givenName, familyName) {
      const u = userOf(id);
      const changes = [
        { field: 'firstname', from: u.firstname, to: givenName },
        { field: 'lastname', from: u.lastname, to: familyName },
      ];
      u.firstname = givenName;
      u.lastname = familyName;
      u.displayname = `${givenName} ${familyName}`;
      return { atMs: record('user_update', { resource: userResource(u), changes }) };
    },
    async setInScope(id, inScope) {
      return { atMs: setMember(scopeGroup, userOf(id), inScope) ?? Date.now() };
    },
    async deleteUser(id) {
      const u = userOf(id);
      users.delete(id);
      directUsers.delete(id);
      for (const g of groups.values()) g.members.delete(id);
      return { atMs: record('user_delete', { resource: userResource(u), changes: [] }) };
    },
    async createGroup(name) {
      const g: Group = { id: newId('64'), name, members: new Set() };
      groups.set(g.id, g);
      record('group_create', { resource: { id: g.id, type: 'user_group', name } });
      boundGroups.add(g.id);
      return { id: g.id, atMs: association('add', groupEnd(g), appEnd()) };
    },
    async addMember(groupId, userId) {
      return { atMs: setMember(groupOf(groupId), userOf(userId), true) ?? Date.now() };
    },
    async removeMember(groupId, userId) {
      return { atMs: setMember(groupOf(groupId), userOf(userId), false) ?? Date.now() };
    },
    async bindDirectly(userId, bound) {
      const u = userOf(userId);
      if (bound) directUsers.add(userId);
      else directUsers.delete(userId);
      return { atMs: association(bound ? 'add' : 'remove', userEnd(u), appEnd()) };
    },
    async bindGroup(groupId, bound) {
      const g = groupOf(groupId);
      if (bound) boundGroups.add(groupId);
      else boundGroups.delete(groupId);
      return { atMs: association(bound ? 'add' : 'remove', groupEnd(g), appEnd()) };
    },
    async renameGroup(groupId, name) {
      const g = groupOf(groupId);
      const from = g.name;
      g.name = name;
      return { atMs: record('group_update', { resource: { id: g.id, type: 'user_group', name }, changes: [{ field: 'name', from, to: name }] }) };
    },
    setOutage(on) {
      outage = on;
    },
    requestCounts: () => ({ ...counts }),
    events: () => events.map(({ ms: _ms, visibleAtMs: _v, ...e }) => e),
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}
