import { randomBytes, randomUUID } from 'node:crypto';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { FakeIdp } from './fake-idp.js';

/**
 * A stateful Microsoft Entra ID: the sign-in endpoint (client credentials, over HTTPS with the
 * self-signed authority below, since @azure/identity refuses an http authority) and Microsoft
 * Graph v1.0 over http, in Graph's wire format: paging by @odata.nextLink, delta rounds with real
 * delta tokens (which can be expired), app assignments of one enterprise app (scope mode
 * `assignment`), and change notification subscriptions with the validation handshake and a
 * notification POSTed to the subscriber right after each change.
 */

/** The fake authority's certificate, for 127.0.0.1 and localhost (test only; its key is below). */
export const FAKE_AUTHORITY_CA = `-----BEGIN CERTIFICATE-----
MIIBtjCCAV2gAwIBAgIUblgePvnnDVoOSVHplmjwmy7xnbcwCgYIKoZIzj0EAwIw
IjEgMB4GA1UEAwwXdHZzeW5jIGxvY2FsIEVudHJhIGZha2UwIBcNMjYxMTMwMjMy
ODI3WhgPMjEyNjExMDYyMzI4MjdaMCIxIDAeBgNVBAMMF3R2c3luYyBsb2NhbCBF
bnRyYSBmYWtlMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEbMRS/kOHwsy0xtWM
a/9FIcKEHxuCz4eLY29pNGWIl+g7Jse6qxJQWXE+2zeUPSfyNKCMgGYChiripBm9
aJJMSqNvMG0wHQYDVR0OBBYEFJPU2HARhWyN/SmZ7vUyfRtKi1XZMB8GA1UdIwQY
MBaAFJPU2HARhWyN/SmZ7vUyfRtKi1XZMBoGA1UdEQQTMBGHBH8AAAGCCWxvY2Fs
aG9zdDAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0cAMEQCIH3DduUvCxEq
vGBCz/mmiboeXA4meNGnSudB4SSnT2GUAiAp6o3kIqi2bZ/Jr+zybk5OL2BSvHvO
egVut92YWKqAEw==
-----END CERTIFICATE-----
`;
const FAKE_AUTHORITY_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg9BOa+HQDcIvAXmG7
1t1icPPxXqz1/MiyrJg1aFWt1fahRANCAARsxFL+Q4fCzLTG1Yxr/0UhwoQfG4LP
h4tjb2k0ZYiX6Dsmx7qrElBZcT7bN5Q9J/I0oIyAZgKGKuKkGb1okkxK
-----END PRIVATE KEY-----
`;

const USER_TYPE = '#microsoft.graph.user';
const GROUP_TYPE = '#microsoft.graph.group';

interface FakeUser {
  id: string;
  userPrincipalName: string;
  mail: string;
  displayName: string;
  givenName: string;
  surname: string;
  accountEnabled: boolean;
  preferredLanguage: string | null;
}
interface FakeGroup {
  id: string;
  displayName: string;
  members: Set<string>;
}
interface Subscription {
  id: string;
  resource: 'users' | 'groups';
  changeType: string;
  notificationUrl: string;
  clientState: string | undefined;
  expirationDateTime: string;
}
type Change =
  | { seq: number; kind: 'user'; id: string }
  | { seq: number; kind: 'group'; id: string }
  | { seq: number; kind: 'member'; groupId: string; userId: string; removed: boolean };

export interface EntraFake extends FakeIdp {
  readonly kind: 'entra';
  /** Where the sign-in endpoint listens (HTTPS, self-signed: FAKE_AUTHORITY_CA). */
  readonly authorityHost: string;
  readonly tenantId: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly servicePrincipalId: string;
  renameGroup(groupId: string, name: string): Promise<{ atMs: number }>;
  /** Graph forgets every delta token issued so far (the next round with one gets 410 syncStateNotFound). */
  expireDeltaTokens(): void;
  /** Graph forgets the subscriptions (a renewal then gets 404). */
  dropSubscriptions(): void;
  subscriptions(): Subscription[];
  /** Notification POSTs answered with a 2xx, and the others. */
  deliveries(): { ok: number; failed: number };
  /** Resolves when every notification POST started so far has been answered. */
  settle(): Promise<void>;
}

export interface EntraFakeOptions {
  /** Records per page of every listing and delta round (Graph's default is 100). */
  pageSize?: number;
}

export async function startEntraFake(opts: EntraFakeOptions = {}): Promise<EntraFake> {
  const pageSize = opts.pageSize ?? 100;
  const tenantId = randomUUID();
  const clientId = randomUUID();
  const clientSecret = `fake~${randomBytes(18).toString('base64url')}`;
  const servicePrincipalId = randomUUID();
  const tokens = new Set<string>();
  const users = new Map<string, FakeUser>();
  const removedUsers = new Set<string>();
  const groups = new Map<string, FakeGroup>();
  const removedGroups = new Set<string>();
  const assignedUsers = new Set<string>();
  const assignedGroups = new Set<string>();
  const subs = new Map<string, Subscription>();
  const changes: Change[] = [];
  const counts: Record<string, number> = {};
  const pending = new Set<Promise<void>>();
  const delivered = { ok: 0, failed: 0 };
  let seq = 0;
  /** Delta tokens carry the epoch they were issued in; expiring them starts a new one. */
  let epoch = 1;
  let outage = false;
  let graphUrl = '';
  let authorityUrl = '';

  const count = (label: string) => {
    counts[label] = (counts[label] ?? 0) + 1;
  };

  // --- Graph answers --------------------------------------------------------------------------------

  const send = (res: ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers });
    res.end(body === undefined ? undefined : JSON.stringify(body));
  };
  const error = (res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}) =>
    send(res, status, { error: { code, message, innerError: { date: new Date().toISOString(), 'request-id': randomUUID() } } }, headers);
  const notFound = (res: ServerResponse, id: string) =>
    error(res, 404, 'Request_ResourceNotFound', `Resource '${id}' does not exist or one of its queried reference-property objects are not present.`);

  /** Graph's query options by lower-case name (Graph accepts $deltaToken and $deltatoken alike). */
  const queryOf = (url: URL) => {
    const q = new Map<string, string>();
    for (const [k, v] of url.searchParams) q.set(k.toLowerCase(), v);
    return q;
  };
  const selected = (record: Record<string, unknown>, q: Map<string, string>): Record<string, unknown> => {
    const select = q.get('$select');
    if (!select) return record;
    const keep = new Set(['id', '@odata.type', '@removed', 'members@delta', ...select.split(',')]);
    return Object.fromEntries(Object.entries(record).filter(([k]) => keep.has(k)));
  };
  const userRecord = (u: FakeUser, typed = false) => ({ ...(typed ? { '@odata.type': USER_TYPE } : {}), ...u });
  const groupRecord = (g: FakeGroup, typed = false) => ({
    ...(typed ? { '@odata.type': GROUP_TYPE } : {}),
    id: g.id,
    displayName: g.displayName,
    mailEnabled: false,
    securityEnabled: true,
  });

  /** One page of `all`, by $top and a numeric $skiptoken, with the next link where more remain. */
  const listPage = (res: ServerResponse, url: URL, all: Record<string, unknown>[], context: string) => {
    const q = queryOf(url);
    const top = Math.min(Number(q.get('$top') ?? pageSize) || pageSize, 999);
    const offset = Number(q.get('$skiptoken') ?? 0);
    const value = all.slice(offset, offset + top).map((r) => selected(r, q));
    const body: Record<string, unknown> = { '@odata.context': `${graphUrl}/v1.0/$metadata#${context}`, value };
    if (q.has('$count')) body['@odata.count'] = all.length;
    if (offset + top < all.length) {
      const next = new URL(url.toString());
      next.searchParams.set('$skiptoken', String(offset + top));
      body['@odata.nextLink'] = `${graphUrl}${next.pathname}${next.search}`;
    }
    send(res, 200, body);
  };

  /** Changes in (from, to]: the delta round of users or groups as Graph would send it. */
  const deltaEntries = (kind: 'users' | 'groups', from: number | undefined, to: number): Record<string, unknown>[] => {
    if (kind === 'users') {
      if (from === undefined) return [...users.values()].map((u) => userRecord(u));
      const ids = new Set<string>();
      for (const c of changes) if (c.seq > from && c.seq <= to && c.kind === 'user') ids.add(c.id);
      return [...ids].flatMap((id): Record<string, unknown>[] => {
        const u = users.get(id);
        if (u) return [userRecord(u)];
        return removedUsers.has(id) ? [{ id, '@removed': { reason: 'changed' } }] : [];
      });
    }
    if (from === undefined) {
      return [...groups.values()].map((g) => ({
        ...groupRecord(g),
        'members@delta': [...g.members].map((id) => ({ '@odata.type': USER_TYPE, id })),
      }));
    }
    const touched = new Map<string, Map<string, boolean>>();
    for (const c of changes) {
      if (c.seq <= from || c.seq > to) continue;
      if (c.kind === 'group') touched.set(c.id, touched.get(c.id) ?? new Map());
      if (c.kind === 'member') {
        const members = touched.get(c.groupId) ?? new Map<string, boolean>();
        members.set(c.userId, c.removed);
        touched.set(c.groupId, members);
      }
    }
    return [...touched].flatMap(([id, members]): Record<string, unknown>[] => {
      const g = groups.get(id);
      if (!g) return removedGroups.has(id) ? [{ id, '@removed': { reason: 'changed' } }] : [];
      const entry: Record<string, unknown> = groupRecord(g);
      if (members.size > 0) {
        entry['members@delta'] = [...members].map(([userId, removed]) => ({
          '@odata.type': USER_TYPE,
          id: userId,
          ...(removed ? { '@removed': { reason: 'deleted' } } : {}),
        }));
      }
      return [entry];
    });
  };

  /** GET /{users|groups}/delta: $deltatoken=latest, a delta token (epoch.seq), or a skiptoken (epoch.from.to.offset) for later pages. */
  const delta = (res: ServerResponse, url: URL, kind: 'users' | 'groups') => {
    count(`${kind}-delta`);
    const q = queryOf(url);
    const deltaToken = q.get('$deltatoken');
    const skip = q.get('$skiptoken');
    const base = new URL(`${graphUrl}/v1.0/${kind}/delta`);
    if (q.has('$select')) base.searchParams.set('$select', q.get('$select') ?? '');
    const link = (name: string, value: string) => {
      const u = new URL(base.toString());
      u.searchParams.set(name, value);
      return u.toString();
    };
    const context = `${graphUrl}/v1.0/$metadata#${kind}`;
    if (deltaToken === 'latest') {
      send(res, 200, { '@odata.context': context, value: [], '@odata.deltaLink': link('$deltatoken', `${epoch}.${seq}`) });
      return;
    }
    let from: number | undefined;
    let to = seq;
    let offset = 0;
    const token = deltaToken ?? skip;
    if (token !== undefined) {
      const parts = token.split('.').map(Number);
      if (parts[0] !== epoch || parts.some((n) => !Number.isInteger(n))) {
        error(res, 410, 'syncStateNotFound', 'The sync state generation is not found. Please restart the sync without a state token.');
        return;
      }
      if (deltaToken !== undefined) from = parts[1];
      else {
        from = parts[1] === -1 ? undefined : parts[1];
        to = parts[2] ?? seq;
        offset = parts[3] ?? 0;
      }
    }
    const all = deltaEntries(kind, from, to);
    const maxPage = Number(/odata\.maxpagesize=(\d+)/.exec(String(res.req.headers.prefer ?? ''))?.[1] ?? pageSize);
    const size = Math.min(pageSize, maxPage);
    const value = all.slice(offset, offset + size).map((r) => selected(r, q));
    const body: Record<string, unknown> = { '@odata.context': context, value };
    if (offset + size < all.length) body['@odata.nextLink'] = link('$skiptoken', `${epoch}.${from ?? -1}.${to}.${offset + size}`);
    else body['@odata.deltaLink'] = link('$deltatoken', `${epoch}.${to}`);
    send(res, 200, body);
  };

  const userByRef = (ref: string): FakeUser | undefined => {
    const direct = users.get(ref);
    if (direct) return direct;
    const lower = ref.toLowerCase();
    return [...users.values()].find((u) => u.userPrincipalName.toLowerCase() === lower);
  };
  const assignment = (principalId: string, principalType: 'User' | 'Group', principalDisplayName: string) => ({
    id: Buffer.from(`${principalId}:${servicePrincipalId}`).toString('base64url').slice(0, 43),
    appRoleId: '00000000-0000-0000-0000-000000000000',
    createdDateTime: '2026-01-01T00:00:00Z',
    principalId,
    principalType,
    principalDisplayName,
    resourceDisplayName: 'TeamViewer',
    resourceId: servicePrincipalId,
  });

  const readBody = (req: IncomingMessage): Promise<string> =>
    new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      req.on('error', reject);
    });

  /** Graph's validation request to a new subscription's notificationUrl: the token must come back as plain text within 10 s. */
  const validate = async (notificationUrl: string): Promise<boolean> => {
    const token = `Validation: Testing client application reachability for subscription Request-Id: ${randomUUID()}`;
    const target = new URL(notificationUrl);
    target.searchParams.set('validationToken', token);
    try {
      const answer = await fetch(target, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '', signal: AbortSignal.timeout(10_000) });
      const text = await answer.text();
      return answer.status === 200 && /^text\/plain/i.test(answer.headers.get('content-type') ?? '') && text === token;
    } catch {
      return false;
    }
  };

  const subscriptionBody = (s: Subscription) => ({
    '@odata.context': `${graphUrl}/v1.0/$metadata#subscriptions/$entity`,
    id: s.id,
    resource: s.resource,
    applicationId: clientId,
    changeType: s.changeType,
    clientState: s.clientState ?? null,
    notificationUrl: s.notificationUrl,
    expirationDateTime: s.expirationDateTime,
    creatorId: servicePrincipalId,
    latestSupportedTlsVersion: 'v1_2',
  });

  /** Change notifications for one change, POSTed to every live subscription on that resource. */
  const notify = (resource: 'users' | 'groups', id: string, changeType: 'updated' | 'deleted') => {
    const type = resource === 'users' ? 'User' : 'Group';
    for (const s of subs.values()) {
      if (s.resource !== resource || Date.parse(s.expirationDateTime) < Date.now()) continue;
      const body = {
        value: [
          {
            subscriptionId: s.id,
            subscriptionExpirationDateTime: s.expirationDateTime,
            changeType,
            resource: `${type}s/${id}`,
            resourceData: { '@odata.type': `#Microsoft.Graph.${type}`, '@odata.id': `${type}s/${id}`, id, organizationId: tenantId },
            clientState: s.clientState ?? null,
            tenantId,
          },
        ],
      };
      count('notifications');
      const delivery = fetch(s.notificationUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
      })
        .then(async (answer) => {
          await answer.arrayBuffer();
          if (answer.status >= 200 && answer.status < 300) delivered.ok++;
          else delivered.failed++;
        })
        .catch(() => {
          delivered.failed++;
        })
        .finally(() => pending.delete(delivery));
      pending.add(delivery);
    }
  };

  const graph = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', graphUrl);
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!bearer || !tokens.has(bearer)) {
      error(res, 401, 'InvalidAuthenticationToken', 'Access token is empty or invalid.');
      return;
    }
    if (outage) {
      count('outage');
      error(res, 503, 'serviceNotAvailable', 'Service unavailable', { 'retry-after': '1' });
      return;
    }
    const path = url.pathname.replace(/^\/v1\.0/, '');
    const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
    const method = req.method ?? 'GET';
    const q = queryOf(url);

    if (parts[0] === 'subscriptions') {
      count('subscriptions');
      if (method === 'POST' && parts.length === 1) {
        const body = JSON.parse(await readBody(req)) as Record<string, string>;
        const resource = body.resource;
        if (resource !== 'users' && resource !== 'groups') return error(res, 400, 'InvalidRequest', `resource ${resource} is not supported here`);
        if (!body.notificationUrl || !body.expirationDateTime || !body.changeType) return error(res, 400, 'InvalidRequest', 'missing property');
        if (!(await validate(body.notificationUrl))) {
          return error(
            res,
            400,
            'ValidationError',
            'Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request.',
          );
        }
        const s: Subscription = {
          id: randomUUID(),
          resource,
          changeType: body.changeType,
          notificationUrl: body.notificationUrl,
          clientState: body.clientState,
          expirationDateTime: new Date(Math.min(Date.parse(body.expirationDateTime), Date.now() + 41_760 * 60_000)).toISOString(),
        };
        subs.set(s.id, s);
        return send(res, 201, subscriptionBody(s));
      }
      const s = parts[1] === undefined ? undefined : subs.get(parts[1]);
      if (parts.length === 2 && !s) return error(res, 404, 'ResourceNotFound', `The object was not found.`);
      if (method === 'PATCH' && s) {
        const body = JSON.parse(await readBody(req)) as Record<string, string>;
        if (body.expirationDateTime) s.expirationDateTime = new Date(Date.parse(body.expirationDateTime)).toISOString();
        return send(res, 200, subscriptionBody(s));
      }
      if (method === 'DELETE' && s) {
        subs.delete(s.id);
        return send(res, 204);
      }
      if (method === 'GET' && parts.length === 1) return listPage(res, url, [...subs.values()].map(subscriptionBody), 'subscriptions');
      return error(res, 405, 'MethodNotAllowed', 'not supported');
    }
    if (method !== 'GET') return error(res, 405, 'MethodNotAllowed', 'not supported');

    if (parts[0] === 'users' && parts[1] === 'delta') return delta(res, url, 'users');
    if (parts[0] === 'groups' && parts[1] === 'delta') return delta(res, url, 'groups');
    if (parts[0] === 'users' && parts.length === 1) {
      count('users');
      let all = [...users.values()];
      const filter = q.get('$filter');
      if (filter) {
        const mail = /^mail eq '((?:[^']|'')*)'$/.exec(filter)?.[1]?.replace(/''/g, "'");
        if (mail === undefined) return error(res, 400, 'Request_UnsupportedQuery', 'Unsupported query.');
        all = all.filter((u) => u.mail.toLowerCase() === mail.toLowerCase());
      }
      return listPage(
        res,
        url,
        all.map((u) => userRecord(u)),
        'users',
      );
    }
    if (parts[0] === 'users' && parts[1] !== undefined) {
      const u = userByRef(parts[1]);
      if (!u) {
        count('user');
        return notFound(res, parts[1]);
      }
      if (parts.length === 2) {
        count('user');
        return send(res, 200, { '@odata.context': `${graphUrl}/v1.0/$metadata#users/$entity`, ...selected(userRecord(u), q) });
      }
      if (parts[2] === 'memberOf' || parts[2] === 'transitiveMemberOf') {
        count('memberOf');
        const of = [...groups.values()].filter((g) => g.members.has(u.id)).map((g) => groupRecord(g, true));
        return listPage(res, url, of, 'directoryObjects');
      }
      if (parts[2] === 'appRoleAssignments') {
        count('assignments');
        const filter = q.get('$filter');
        const resource = filter ? /^resourceId eq ([0-9a-f-]+)$/i.exec(filter)?.[1] : undefined;
        if (filter && !resource) return error(res, 400, 'Request_UnsupportedQuery', 'Unsupported query.');
        const all = [
          ...(assignedUsers.has(u.id) ? [assignment(u.id, 'User', u.displayName)] : []),
          ...[...groups.values()].filter((g) => assignedGroups.has(g.id) && g.members.has(u.id)).map((g) => assignment(g.id, 'Group', g.displayName)),
        ].filter((a) => resource === undefined || a.resourceId === resource);
        return listPage(res, url, all, 'appRoleAssignments');
      }
    }
    if (parts[0] === 'groups' && parts[1] !== undefined) {
      const g = groups.get(parts[1]);
      count(parts.length === 2 ? 'groups' : 'members');
      if (!g) return notFound(res, parts[1]);
      if (parts.length === 2) return send(res, 200, { '@odata.context': `${graphUrl}/v1.0/$metadata#groups/$entity`, ...selected(groupRecord(g), q) });
      if ((parts[2] === 'members' && parts[3] === 'microsoft.graph.user') || parts[2] === 'transitiveMembers') {
        const typed = parts[2] === 'transitiveMembers';
        const members = [...g.members].flatMap((id) => {
          const u = users.get(id);
          return u ? [userRecord(u, typed)] : [];
        });
        return listPage(res, url, members, 'users');
      }
    }
    if (parts[0] === 'servicePrincipals' && parts[2] === 'appRoleAssignedTo') {
      count('assignments');
      if (parts[1] !== servicePrincipalId) return notFound(res, parts[1] ?? '');
      const all = [
        ...[...assignedUsers].flatMap((id) => {
          const u = users.get(id);
          return u ? [assignment(id, 'User', u.displayName)] : [];
        }),
        ...[...assignedGroups].flatMap((id) => {
          const g = groups.get(id);
          return g ? [assignment(id, 'Group', g.displayName)] : [];
        }),
      ];
      return listPage(res, url, all, 'appRoleAssignments');
    }
    error(res, 400, 'BadRequest', `Resource not found for the segment '${parts[0] ?? ''}'.`);
  };

  // --- the sign-in endpoint (HTTPS) -----------------------------------------------------------------

  const authority = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', authorityUrl);
    if (req.method === 'GET' && url.pathname === `/${tenantId}/v2.0/.well-known/openid-configuration`) {
      count('openid');
      return send(res, 200, {
        issuer: `${authorityUrl}/${tenantId}/v2.0`,
        authorization_endpoint: `${authorityUrl}/${tenantId}/oauth2/v2.0/authorize`,
        token_endpoint: `${authorityUrl}/${tenantId}/oauth2/v2.0/token`,
        jwks_uri: `${authorityUrl}/${tenantId}/discovery/v2.0/keys`,
        token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
        response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
        tenant_region_scope: 'EU',
      });
    }
    if (req.method === 'POST' && url.pathname === `/${tenantId}/oauth2/v2.0/token`) {
      count('token');
      const form = new URLSearchParams(await readBody(req));
      if (form.get('grant_type') !== 'client_credentials' || form.get('client_id') !== clientId || form.get('client_secret') !== clientSecret) {
        return send(res, 401, { error: 'invalid_client', error_description: 'AADSTS7000215: Invalid client secret provided.', error_codes: [7000215] });
      }
      if (form.get('scope') !== `${graphUrl}/.default`) {
        return send(res, 400, { error: 'invalid_scope', error_description: `AADSTS1002012: The provided value for scope ${form.get('scope')} is not valid.` });
      }
      const token = `fake-at-${randomBytes(24).toString('base64url')}`;
      tokens.add(token);
      return send(res, 200, { token_type: 'Bearer', expires_in: 3599, ext_expires_in: 3599, access_token: token });
    }
    send(res, 404, { error: 'not_found' });
  };

  const guarded = (handler: (req: IncomingMessage, res: ServerResponse) => Promise<void>) => (req: IncomingMessage, res: ServerResponse) => {
    handler(req, res).catch((err: unknown) => {
      if (!res.headersSent) error(res, 500, 'generalException', err instanceof Error ? err.message : String(err));
      else res.end();
    });
  };
  const graphServer = createServer(guarded(graph));
  const authorityServer = createTlsServer({ cert: FAKE_AUTHORITY_CA, key: FAKE_AUTHORITY_KEY }, guarded(authority));
  await new Promise<void>((resolve) => graphServer.listen(0, '127.0.0.1', resolve));
  await new Promise<void>((resolve) => authorityServer.listen(0, '127.0.0.1', resolve));
  graphUrl = `http://127.0.0.1:${(graphServer.address() as AddressInfo).port}`;
  authorityUrl = `https://127.0.0.1:${(authorityServer.address() as AddressInfo).port}`;

  // --- mutations ------------------------------------------------------------------------------------

  const changed = (change: Change extends infer C ? (C extends Change ? Omit<C, 'seq'> : never) : never): { atMs: number } => {
    seq++;
    changes.push({ ...change, seq } as Change);
    return { atMs: Date.now() };
  };
  const userOf = (id: string) => {
    const u = users.get(id);
    if (!u) throw new Error(`the fake has no user ${id}`);
    return u;
  };
  const groupOf = (id: string) => {
    const g = groups.get(id);
    if (!g) throw new Error(`the fake has no group ${id}`);
    return g;
  };
  const memberChange = (g: FakeGroup, userId: string, removed: boolean) => {
    if (removed) g.members.delete(userId);
    else g.members.add(userId);
    const at = changed({ kind: 'member', groupId: g.id, userId, removed });
    notify('groups', g.id, 'updated');
    return at;
  };

  return {
    kind: 'entra',
    url: graphUrl,
    authorityHost: authorityUrl,
    tenantId,
    clientId,
    clientSecret,
    servicePrincipalId,
    sourceConfig(changesBlock?: Record<string, unknown>) {
      return {
        type: 'entra',
        tenantId,
        clientId,
        clientSecret,
        graphBaseUrl: graphUrl,
        authorityHost: authorityUrl,
        disableInstanceDiscovery: true,
        authorityCaCertificate: FAKE_AUTHORITY_CA,
        scope: { mode: 'assignment', servicePrincipalId },
        ...(changesBlock ? { changes: changesBlock } : {}),
      };
    },
    async createUser(p) {
      const id = randomUUID();
      users.set(id, {
        id,
        userPrincipalName: p.email,
        mail: p.email,
        displayName: `${p.givenName} ${p.familyName}`,
        givenName: p.givenName,
        surname: p.familyName,
        accountEnabled: p.active ?? true,
        preferredLanguage: null,
      });
      if (p.inScope ?? true) assignedUsers.add(id);
      const at = changed({ kind: 'user', id });
      notify('users', id, 'updated');
      return { id, ...at };
    },
    async setActive(id, active) {
      userOf(id).accountEnabled = active;
      const at = changed({ kind: 'user', id });
      notify('users', id, 'updated');
      return at;
    },
    async rename(id, givenName, familyName) {
      const u = userOf(id);
      Object.assign(u, { givenName, surname: familyName, displayName: `${givenName} ${familyName}` });
      const at = changed({ kind: 'user', id });
      notify('users', id, 'updated');
      return at;
    },
    /** The direct app assignment; out of scope also leaves every assigned group (Graph sends no notification for assignments). */
    async setInScope(id, inScope) {
      userOf(id);
      if (inScope) {
        assignedUsers.add(id);
        return { atMs: Date.now() };
      }
      assignedUsers.delete(id);
      let at = { atMs: Date.now() };
      for (const g of groups.values()) if (assignedGroups.has(g.id) && g.members.has(id)) at = memberChange(g, id, true);
      return at;
    },
    /** A soft delete: gone from /users, `@removed` in the users delta, an `updated` notification. */
    async deleteUser(id) {
      userOf(id);
      users.delete(id);
      removedUsers.add(id);
      assignedUsers.delete(id);
      for (const g of groups.values()) g.members.delete(id);
      const at = changed({ kind: 'user', id });
      notify('users', id, 'updated');
      return at;
    },
    async createGroup(name) {
      const id = randomUUID();
      groups.set(id, { id, displayName: name, members: new Set() });
      assignedGroups.add(id);
      const at = changed({ kind: 'group', id });
      notify('groups', id, 'updated');
      return { id, ...at };
    },
    async renameGroup(groupId, name) {
      groupOf(groupId).displayName = name;
      const at = changed({ kind: 'group', id: groupId });
      notify('groups', groupId, 'updated');
      return at;
    },
    async addMember(groupId, userId) {
      userOf(userId);
      return memberChange(groupOf(groupId), userId, false);
    },
    async removeMember(groupId, userId) {
      return memberChange(groupOf(groupId), userId, true);
    },
    setOutage(on) {
      outage = on;
    },
    requestCounts() {
      return { ...counts };
    },
    expireDeltaTokens() {
      epoch++;
    },
    dropSubscriptions() {
      subs.clear();
    },
    subscriptions() {
      return [...subs.values()].map((s) => ({ ...s }));
    },
    deliveries() {
      return { ...delivered };
    },
    async settle() {
      while (pending.size > 0) await Promise.allSettled([...pending]);
    },
    async close() {
      await Promise.allSettled([...pending]);
      graphServer.closeAllConnections();
      authorityServer.closeAllConnections();
      await Promise.all([new Promise<void>((r) => graphServer.close(() => r())), new Promise<void>((r) => authorityServer.close(() => r()))]);
    },
  };
}
