import { setTimeout as sleep } from 'node:timers/promises';
import { inspect } from 'node:util';
import nock from 'nock';
import pino from 'pino';
import { afterEach, beforeAll, afterAll, describe, expect, it } from 'vitest';
import { jumpcloudSourceConfigSchema } from '../../../src/connectors/jumpcloud/config.js';
import { createJumpcloudSource } from '../../../src/connectors/jumpcloud/source.js';
import { SYSTEM_USER_FIELDS } from '../../../src/connectors/jumpcloud/wire.js';
import { SyncError } from '../../../src/model/failure.js';
import { SourceReadError } from '../../../src/connectors/source.js';
import { MemoryStateStore } from '../../../src/store/memory-state.js';
import { capturedLogger, echoedForms, expectNoLeak } from '../../support/leaks.js';
import { tricklingServer } from '../../support/slow-server.js';

const HOST = 'https://console.jumpcloud.com';
const KEY = 'jc-test-key-3f9a1c0de77b42e8';
const ORG = '5c1e00000000000000000042';
const APP = '6a0000000000000000000a01';
const FAST = { attempts: 3, baseMs: 1, capMs: 5 };

const uid = (n: number) => `5f${n.toString(16).padStart(22, '0')}`;
const gid = (n: number) => `64${n.toString(16).padStart(22, '0')}`;

/** A v1 systemuser as JumpCloud returns it (more fields than asked for, as a real answer may have). */
function systemUser(n: number, over: Record<string, unknown> = {}) {
  return {
    _id: uid(n),
    username: `user${n}`,
    email: `User${n}@Example.test`,
    firstname: `First${n}`,
    lastname: `Last${n}`,
    displayname: `First${n} Last${n}`,
    activated: true,
    account_locked: false,
    suspended: false,
    password_expired: false,
    state: 'ACTIVATED',
    ...over,
  };
}
type Node = { id: string; type: string };
const edge = (from: Node, to: Node) => ({ from: { ...from, attributes: null }, to: { ...to, attributes: null }, attributes: null });
const app = { id: APP, type: 'application' };
/** GraphObjectWithPaths: one path per way the object is reached. */
const reached = (id: string, type: string, ...paths: Node[][]) => ({
  id,
  type,
  compiledAttributes: {},
  paths: paths.map((chain) => chain.slice(1).map((to, i) => edge(chain[i] ?? app, to))),
});
/** A GraphConnection from `/usergroups/{id}/members`. */
const member = (id: string, type = 'user') => ({ to: { id, type, attributes: null }, attributes: null });

function jc(opts: { org?: boolean } = {}) {
  if (opts.org === false) return nock(HOST, { reqheaders: { 'x-api-key': KEY }, badheaders: ['x-org-id'] });
  return nock(HOST, { reqheaders: { 'x-api-key': KEY, 'x-org-id': ORG } });
}
const page = (limit: number, skip: number) => ({ limit: String(limit), skip: String(skip) });
const v2 = (total: number) => ({ 'x-total-count': String(total) });

function logger() {
  const lines: string[] = [];
  return { lines, log: pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) }) };
}

/** Application scope that also takes users bound to the application directly. */
const WITH_DIRECT = { scope: { mode: 'application', applicationId: APP, includeDirectUserBindings: true } };

function source(over: Record<string, unknown> = {}, log = logger().log) {
  const config = jumpcloudSourceConfigSchema.parse({
    type: 'jumpcloud',
    apiKey: KEY,
    orgId: ORG,
    scope: { mode: 'application', applicationId: APP },
    ...over,
  });
  return createJumpcloudSource(config, { state: new MemoryStateStore(), log, backoff: FAST });
}

beforeAll(() => nock.disableNetConnect());
afterEach(() => nock.cleanAll());
afterAll(() => nock.enableNetConnect());

describe('jumpcloud config', () => {
  it('defaults to the US host and direct members, and refuses a page-hungry concurrency', () => {
    const config = jumpcloudSourceConfigSchema.parse({ type: 'jumpcloud', apiKey: 'k', scope: { mode: 'groups', groupIds: ['a'] } });
    expect(config).toMatchObject({ baseUrl: 'https://console.jumpcloud.com/api', nestedGroups: false, concurrency: 4, timeout: 30_000 });
    expect(jumpcloudSourceConfigSchema.safeParse({ ...config, concurrency: 8 }).success).toBe(false);
    expect(jumpcloudSourceConfigSchema.safeParse({ ...config, scope: { mode: 'groups', groupIds: [] } }).success).toBe(false);
  });
});

describe('jumpcloud read', () => {
  it('reads the application scope with direct user bindings: bound groups, their direct members and directly bound users, over many pages', async () => {
    const g1 = { id: gid(1), type: 'user_group' };
    const nestedGroup = { id: gid(2), type: 'user_group' };
    const appUsers = Array.from({ length: 250 }, (_, n) =>
      n === 249 ? reached(uid(n), 'user', [app, { id: uid(n), type: 'user' }]) : reached(uid(n), 'user', [app, g1, { id: uid(n), type: 'user' }]),
    );
    const g1Members = [...Array.from({ length: 200 }, (_, n) => member(uid(n))), member(nestedGroup.id, 'user_group'), member(uid(999))];
    const special: Record<number, Record<string, unknown>> = {
      3: { suspended: true },
      4: { password_expired: true },
      5: { state: 'SUSPENDED' },
      6: { state: 'STAGED', activated: false },
      7: { account_locked: true },
      8: { displayname: '', lastname: null },
    };
    const directory = Array.from({ length: 300 }, (_, n) => systemUser(n, special[n]));

    const api = jc()
      .get(`/api/v2/applications/${APP}/usergroups`)
      .query(page(100, 0))
      .reply(200, [reached(g1.id, 'user_group', [app, g1]), reached(nestedGroup.id, 'user_group', [app, g1, nestedGroup])], v2(2))
      .get(`/api/v2/applications/${APP}/users`)
      .query(page(100, 0))
      .reply(200, appUsers.slice(0, 100), v2(250))
      .get(`/api/v2/applications/${APP}/users`)
      .query(page(100, 100))
      .reply(200, appUsers.slice(100, 200), v2(250))
      .get(`/api/v2/applications/${APP}/users`)
      .query(page(100, 200))
      .reply(200, appUsers.slice(200), v2(250))
      .get(`/api/v2/usergroups/${g1.id}/members`)
      .query(page(100, 0))
      .reply(200, g1Members.slice(0, 100), v2(202))
      .get(`/api/v2/usergroups/${g1.id}/members`)
      .query(page(100, 100))
      .reply(200, g1Members.slice(100, 200), v2(202))
      .get(`/api/v2/usergroups/${g1.id}/members`)
      .query(page(100, 200))
      .reply(200, g1Members.slice(200), v2(202))
      .get('/api/v2/usergroups')
      .query({ ...page(100, 0), fields: 'id name' })
      .reply(
        200,
        [
          { id: g1.id, name: 'TeamViewer Users', type: 'user_group' },
          { id: gid(9), name: 'Other', type: 'user_group' },
        ],
        v2(2),
      );
    for (const skip of [0, 100, 200]) {
      api
        .get('/api/systemusers')
        .query({ ...page(100, skip), sort: '_id', fields: SYSTEM_USER_FIELDS })
        .reply(200, { totalCount: 300, results: directory.slice(skip, skip + 100) });
    }
    // A member deleted between the membership read and the attribute read.
    api
      .get(`/api/systemusers/${uid(999)}`)
      .query({ fields: SYSTEM_USER_FIELDS })
      .reply(404, { message: 'Not found' });

    const read = await source(WITH_DIRECT).read();

    expect(api.isDone()).toBe(true);
    expect(read.complete).toBe(true);
    expect(read.issues).toEqual([]);
    // The 200 members of the bound group and the one user bound directly; users the application
    // reaches only through the nested group are not members of a bound group.
    expect(read.users).toHaveLength(201);
    const byId = new Map(read.users.map((u) => [u.id, u]));
    expect(byId.get(uid(0))).toEqual({
      id: uid(0),
      email: 'User0@Example.test',
      displayName: 'First0 Last0',
      givenName: 'First0',
      familyName: 'Last0',
      active: true,
    });
    expect([3, 4, 5, 6, 7].map((n) => byId.get(uid(n))?.active)).toEqual([false, false, false, false, true]);
    expect(byId.get(uid(8))).toEqual({ id: uid(8), email: 'User8@Example.test', givenName: 'First8', active: true });
    // Bound directly, in no group: a user of its own.
    expect(byId.get(uid(249))?.active).toBe(true);
    expect(byId.has(uid(248)) || byId.has(uid(260))).toBe(false);

    // Only the directly bound group; the member group and a deleted member are not members.
    expect(read.groups).toEqual([{ id: g1.id, name: 'TeamViewer Users', memberIds: Array.from({ length: 200 }, (_, n) => uid(n)) }]);
  });

  it("takes, like JumpCloud's own provisioning, only members of bound groups unless direct user bindings are asked for", async () => {
    const g1 = { id: gid(5), type: 'user_group' };
    const boundDirectly = reached(uid(2), 'user', [app, { id: uid(2), type: 'user' }]);
    const viaGroup = reached(uid(1), 'user', [app, g1, { id: uid(1), type: 'user' }]);
    const mock = () => {
      const api = jc()
        .get(`/api/v2/applications/${APP}/usergroups`)
        .query(page(100, 0))
        .reply(200, [reached(g1.id, 'user_group', [app, g1])], v2(1))
        .get(`/api/v2/usergroups/${g1.id}/members`)
        .query(page(100, 0))
        .reply(200, [member(uid(1))], v2(1))
        .get('/api/v2/usergroups')
        .query(true)
        .reply(200, [{ id: g1.id, name: 'TeamViewer Users' }], v2(1))
        .get('/api/systemusers')
        .query(true)
        .reply(200, { totalCount: 2, results: [systemUser(1), systemUser(2)] });
      const appUsers = jc().get(`/api/v2/applications/${APP}/users`).query(page(100, 0)).reply(200, [viaGroup, boundDirectly], v2(2));
      return { api, appUsers };
    };

    const byDefault = mock();
    const groupsOnly = await source().read();
    expect(byDefault.api.isDone()).toBe(true);
    expect(byDefault.appUsers.isDone()).toBe(false); // the directly bound users are not even listed
    expect(groupsOnly.users.map((u) => u.id)).toEqual([uid(1)]);
    nock.cleanAll();

    const asked = mock();
    const withDirect = await source(WITH_DIRECT).read();
    expect(asked.api.isDone() && asked.appUsers.isDone()).toBe(true);
    expect(withDirect.users.map((u) => u.id)).toEqual([uid(1), uid(2)]);
    expect(withDirect.groups).toEqual([{ id: g1.id, name: 'TeamViewer Users', memberIds: [uid(1)] }]);
  });

  it('reads listed groups with nested members, fetching users by id when the scope is small against the directory', async () => {
    const [ga, gb, gn] = [gid(10), gid(11), gid(12)];
    const [a, b, n] = [
      { id: ga, type: 'user_group' },
      { id: gb, type: 'user_group' },
      { id: gn, type: 'user_group' },
    ];
    const user = (i: number) => ({ id: uid(i), type: 'user' });
    const api = jc({ org: false })
      .get(`/api/v2/usergroups/${ga}/membership`)
      .query(page(100, 0))
      .reply(200, [reached(uid(1), 'user', [a, user(1)]), reached(uid(2), 'user', [a, n, user(2)]), reached(gn, 'user_group', [a, n])], v2(3))
      .get(`/api/v2/usergroups/${gb}/membership`)
      .query(page(100, 0))
      .reply(200, [reached(uid(2), 'user', [b, user(2)]), reached(uid(3), 'user', [b, user(3)])], v2(2))
      .get('/api/v2/usergroups')
      .query({ ...page(100, 0), fields: 'id name' })
      .reply(
        200,
        Array.from({ length: 100 }, (_, n) => ({ id: gid(1000 + n), name: `G${n}` })),
        v2(5000),
      )
      .get(`/api/v2/usergroups/${ga}`)
      .reply(200, { id: ga, name: 'Support', type: 'user_group', membershipMethod: 'STATIC' })
      .get(`/api/v2/usergroups/${gb}`)
      .reply(200, { id: gb, name: 'Sales', type: 'user_group' })
      .get('/api/systemusers')
      .query({ ...page(100, 0), sort: '_id', fields: SYSTEM_USER_FIELDS })
      .reply(200, { totalCount: 100_000, results: Array.from({ length: 100 }, (_, n) => systemUser(50_000 + n)) })
      .get(`/api/systemusers/${uid(1)}`)
      .query({ fields: SYSTEM_USER_FIELDS })
      .reply(200, systemUser(1))
      .get(`/api/systemusers/${uid(2)}`)
      .query({ fields: SYSTEM_USER_FIELDS })
      .reply(200, systemUser(2, { state: 'STAGED' }))
      // Deleted between the membership read and the attribute read.
      .get(`/api/systemusers/${uid(3)}`)
      .query({ fields: SYSTEM_USER_FIELDS })
      .reply(404, { message: 'Not found' });

    const read = await source({ orgId: undefined, scope: { mode: 'groups', groupIds: [ga, gb] }, nestedGroups: true }).read();

    expect(api.isDone()).toBe(true);
    expect(read.complete).toBe(true);
    expect(read.users.map((u) => [u.id, u.active])).toEqual([
      [uid(1), true],
      [uid(2), false],
    ]);
    expect(read.groups).toEqual([
      { id: ga, name: 'Support', memberIds: [uid(1), uid(2)] },
      { id: gb, name: 'Sales', memberIds: [uid(2)] },
    ]);
  });

  it('waits as long as Retry-After says on 429, and retries a reset connection', async () => {
    const ga = gid(20);
    const { lines, log } = logger();
    const api = jc()
      .get(`/api/v2/usergroups/${ga}/members`)
      .query(page(100, 0))
      .reply(429, { message: 'Too many requests' }, { 'Retry-After': '1' })
      .get(`/api/v2/usergroups/${ga}/members`)
      .query(page(100, 0))
      .reply(200, [member(uid(1))], v2(1))
      .get('/api/v2/usergroups')
      .query(true)
      .replyWithError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }))
      .get('/api/v2/usergroups')
      .query(true)
      .reply(200, [{ id: ga, name: 'Support' }], v2(1))
      .get('/api/systemusers')
      .query(true)
      .reply(200, { totalCount: 1, results: [systemUser(1)] });

    const started = Date.now();
    const read = await source({ scope: { mode: 'groups', groupIds: [ga] } }, log).read();

    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(api.isDone()).toBe(true);
    expect(read.groups).toEqual([{ id: ga, name: 'Support', memberIds: [uid(1)] }]);
    const retries = lines.map((l) => JSON.parse(l) as { msg: string; waitMs?: number }).filter((l) => l.msg.includes('retrying'));
    expect(retries.map((l) => l.waitMs)).toContain(1000);
    expect(lines.join('\n')).not.toContain(KEY);
  });

  it('fails the whole read when page 3 of 5 keeps failing', async () => {
    const appUsers = Array.from({ length: 500 }, (_, n) => reached(uid(n), 'user', [app, { id: uid(n), type: 'user' }]));
    const api = jc().get(`/api/v2/applications/${APP}/usergroups`).query(page(100, 0)).reply(200, [], v2(0));
    for (const skip of [0, 100, 300, 400]) {
      api
        .get(`/api/v2/applications/${APP}/users`)
        .query(page(100, skip))
        .optionally(skip > 200)
        .reply(200, appUsers.slice(skip, skip + 100), v2(500));
    }
    api.get(`/api/v2/applications/${APP}/users`).query(page(100, 200)).times(FAST.attempts).reply(503, 'Service Unavailable');

    const outcome = await source(WITH_DIRECT)
      .read()
      .then(
        () => 'resolved',
        (err: unknown) => err,
      );

    expect(outcome).toBeInstanceOf(SourceReadError);
    expect((outcome as SourceReadError).message).toMatch(/GET \/v2\/applications\/\w+\/users failed with HTTP 503/);
    expect((outcome as SourceReadError).cause).toBeInstanceOf(SyncError);
    expect(api.isDone()).toBe(true);
  });

  it('skips a malformed user or member entry with an issue, but fails on a malformed page', async () => {
    const ga = gid(30);
    const api = jc()
      .get(`/api/v2/usergroups/${ga}/members`)
      .query(page(100, 0))
      .reply(200, [member(uid(1)), member(uid(2)), { to: { type: 'user' } }], v2(3))
      .get('/api/v2/usergroups')
      .query(true)
      .reply(200, [{ id: ga, name: 'Support' }], v2(1))
      .get('/api/systemusers')
      .query(true)
      .reply(200, { totalCount: 3, results: [systemUser(1), systemUser(2, { suspended: 'no' }), { username: 'ghost' }] });

    const read = await source({ scope: { mode: 'groups', groupIds: [ga] } }).read();

    expect(api.isDone()).toBe(true);
    expect(read.users.map((u) => u.id)).toEqual([uid(1)]);
    expect(read.groups[0]?.memberIds).toEqual([uid(1)]);
    expect(read.issues).toEqual([
      { objectId: ga, kind: 'membership', reason: expect.stringContaining('to.id') },
      { objectId: uid(2), kind: 'user', reason: expect.stringContaining('suspended') },
      { kind: 'user', reason: expect.stringContaining('without an id') },
    ]);

    jc()
      .get(`/api/v2/usergroups/${ga}/members`)
      .query(true)
      .reply(200, { results: [] })
      .get('/api/v2/usergroups')
      .query(true)
      .optionally()
      .reply(200, [], v2(0));
    await expect(source({ scope: { mode: 'groups', groupIds: [ga] } }).read()).rejects.toThrow(/members.*page tvsync cannot read/);
  });

  it('stops at the page cap with a clear error', async () => {
    jc()
      .get(`/api/v2/applications/${APP}/users`)
      .query(page(100, 0))
      .reply(
        200,
        Array.from({ length: 100 }, (_, n) => reached(uid(n), 'user', [app, { id: uid(n), type: 'user' }])),
        v2(1000),
      )
      .get(`/api/v2/applications/${APP}/usergroups`)
      .query(true)
      .optionally()
      .reply(200, [], v2(0));
    await expect(source({ ...WITH_DIRECT, maxPages: 3 }).read()).rejects.toThrow(/users bound to application \w+ run past 3 pages of 100; raise maxPages/);
  });

  it('marks the read incomplete when a list changes while it is paged', async () => {
    const appUsers = Array.from({ length: 150 }, (_, n) => reached(uid(n), 'user', [app, { id: uid(n), type: 'user' }]));
    jc()
      .get(`/api/v2/applications/${APP}/usergroups`)
      .query(page(100, 0))
      .reply(200, [], v2(0))
      .get(`/api/v2/applications/${APP}/users`)
      .query(page(100, 0))
      .reply(200, appUsers.slice(0, 100), v2(150))
      // One user was unbound meanwhile: everyone after it moved up a place, and one was never seen.
      .get(`/api/v2/applications/${APP}/users`)
      .query(page(100, 100))
      .reply(200, appUsers.slice(101), v2(149))
      .get('/api/systemusers')
      .query(true)
      .times(2)
      .reply(200, (uri) => {
        const skip = Number(new URL(uri, HOST).searchParams.get('skip'));
        return { totalCount: 150, results: Array.from({ length: 150 }, (_, n) => systemUser(n)).slice(skip, skip + 100) };
      });

    const read = await source(WITH_DIRECT).read();

    expect(read.users).toHaveLength(149);
    expect(read.complete).toBe(false);
    expect(read.incompleteReason).toMatch(/users bound to application/);
  });

  it('refuses a configured group that does not exist', async () => {
    const ga = gid(40);
    jc()
      .get('/api/v2/usergroups')
      .query(true)
      .reply(200, [], v2(0))
      .get(`/api/v2/usergroups/${ga}/members`)
      .query(true)
      .optionally()
      .reply(200, [], v2(0))
      .get(`/api/v2/usergroups/${ga}`)
      .reply(404, { message: 'Not Found' });
    await expect(source({ scope: { mode: 'groups', groupIds: [ga] } }).read()).rejects.toThrow(/no user group \w+; remove it from scope.groupIds/);
  });

  it('never puts the API key in a thrown error, whether JumpCloud refuses it or cannot be reached', async () => {
    jc()
      .get(`/api/v2/applications/${APP}/usergroups`)
      .query(true)
      .reply(401, { message: 'Unauthorized' })
      .get(`/api/v2/applications/${APP}/users`)
      .query(true)
      .optionally()
      .reply(401, {});
    const refused = await source()
      .read()
      .catch((err: unknown) => err);
    // Unmocked host: nock refuses the connection, as an unreachable server would.
    const unreachable = await source({ baseUrl: 'http://127.0.0.1:9/api' })
      .read()
      .catch((err: unknown) => err);

    expect(refused).toBeInstanceOf(SourceReadError);
    expect((refused as SourceReadError).message).toMatch(/HTTP 401.*check apiKey/);
    expect(((refused as SourceReadError).cause as SyncError).failureClass).toBe('unauthorised');
    expect(unreachable).toBeInstanceOf(SourceReadError);
    expect((unreachable as SourceReadError).message).toMatch(/could not reach JumpCloud at http:\/\/127.0.0.1:9\/api/);
    for (const err of [refused, unreachable]) {
      const e = err as Error;
      for (const text of [e.message, e.stack ?? '', JSON.stringify(e), inspect(e, { depth: Infinity, showHidden: true })]) {
        expect(text).not.toContain(KEY);
      }
    }
  });
});

describe('jumpcloud group lookup', () => {
  it('says deleted for a group JumpCloud no longer has and out-of-scope for one it still has', async () => {
    const api = jc()
      .get(`/api/v2/usergroups/${gid(50)}`)
      .reply(404, { message: 'Not Found' })
      .get(`/api/v2/usergroups/${gid(51)}`)
      .reply(200, { id: gid(51), name: 'Support', type: 'user_group', attributes: null, description: '', email: '', membershipAutomated: false });
    const answers = await source().lookupGroups?.([gid(50), gid(51)]);
    expect(api.isDone()).toBe(true);
    expect(answers).toEqual(
      new Map([
        [gid(50), 'deleted'],
        [gid(51), 'out-of-scope'],
      ]),
    );
  });

  it('throws when JumpCloud keeps failing, without the API key in the error', async () => {
    const api = jc()
      .get(`/api/v2/usergroups/${gid(52)}`)
      .times(3)
      .reply(500, { message: 'Internal Server Error' });
    const err = await source()
      .lookupGroups?.([gid(52)])
      .catch((e: unknown) => e);
    expect(api.isDone()).toBe(true);
    expect(err).toBeInstanceOf(SyncError);
    expect(err).toMatchObject({ failureClass: 'transient', status: 500 });
    const e = err as Error;
    expect(e.message).toMatch(/JumpCloud GET \/v2\/usergroups\/\w+ failed with HTTP 500/);
    for (const text of [e.message, e.stack ?? '', JSON.stringify(e), inspect(e, { depth: Infinity, showHidden: true })]) {
      expect(text).not.toContain(KEY);
    }
  });
});

describe('jumpcloud check', () => {
  it('reports the API key, the directory size and the bound groups, against the EU host', async () => {
    const eu = nock('https://console.eu.jumpcloud.com', { reqheaders: { 'x-api-key': KEY, 'x-org-id': ORG } })
      .get('/api/systemusers')
      .query({ limit: '1', skip: '0', sort: '_id', fields: '_id' })
      .reply(200, { totalCount: 1234, results: [{ _id: uid(1) }] })
      .get(`/api/v2/applications/${APP}/usergroups`)
      .query(page(100, 0))
      .reply(200, [reached(gid(1), 'user_group', [app, { id: gid(1), type: 'user_group' }])], v2(1));

    const result = await source({ baseUrl: 'https://console.eu.jumpcloud.com/api' }).check();

    expect(eu.isDone()).toBe(true);
    expect(result).toEqual({
      ok: true,
      checks: [
        { name: 'read users', ok: true, detail: `API key accepted for organisation ${ORG}; the directory holds 1234 users` },
        { name: 'read user groups bound to the application', ok: true, detail: `1 user group(s) bound directly to application ${APP}` },
      ],
    });
  });

  it('says what failed instead of throwing: a refused key, a missing group, an unreachable host', async () => {
    jc().get('/api/systemusers').query(true).reply(401, { message: 'Unauthorized' });
    const refused = await source().check();
    expect(refused.ok).toBe(false);
    expect(refused.checks).toEqual([{ name: 'read users', ok: false, detail: expect.stringMatching(/HTTP 401.*check apiKey, and set orgId/) }]);

    jc()
      .get('/api/systemusers')
      .query(true)
      .reply(200, { totalCount: 5, results: [{ _id: uid(1) }] })
      .get(`/api/v2/usergroups/${gid(1)}`)
      .reply(200, { id: gid(1), name: 'Support' })
      .get(`/api/v2/usergroups/${gid(2)}`)
      .reply(404, { message: 'Not Found' });
    const missing = await source({ scope: { mode: 'groups', groupIds: [gid(1), gid(2)] } }).check();
    expect(missing.ok).toBe(false);
    expect(missing.checks.map((c) => [c.name, c.ok, c.detail])).toEqual([
      ['read users', true, expect.stringContaining('5 users')],
      [`read user group ${gid(1)}`, true, 'found "Support"'],
      [`read user group ${gid(2)}`, false, expect.stringContaining('HTTP 404')],
    ]);

    const unreachable = await source({ baseUrl: 'http://127.0.0.1:9/api' }).check();
    expect(unreachable.ok).toBe(false);
    expect(unreachable.checks[0]?.detail).toMatch(/could not reach JumpCloud/);
    expect(JSON.stringify(unreachable)).not.toContain(KEY);
  });
});

describe('jumpcloud transport: secrets, redirects and bounded waits', () => {
  const ga = gid(60);
  const groupsScope = { scope: { mode: 'groups', groupIds: [ga] } };

  it('keeps the API key JumpCloud echoes (raw, URL-encoded, base64) out of errors and log lines', async () => {
    const { lines, log } = capturedLogger();
    const echo = `invalid key ${echoedForms(KEY).join(' ')}; headers: {"x-api-key":"${KEY}"}`;
    jc()
      .get(`/api/v2/usergroups/${ga}/members`)
      .query(true)
      .times(FAST.attempts)
      .reply(503, { message: echo })
      .get('/api/v2/usergroups')
      .query(true)
      .optionally()
      .reply(400, { message: echo });
    const err = await source(groupsScope, log)
      .read()
      .catch((e: unknown) => e);

    expect(err).toBeInstanceOf(SourceReadError);
    // What JumpCloud said is kept, with the key taken out.
    expect((err as Error).message).toMatch(/HTTP (503|400).*\[REDACTED\]/);
    expect(lines.some((l) => l.includes('retrying'))).toBe(true);
    expectNoLeak(KEY, err, (err as SourceReadError).cause, lines.join('\n'));
  });

  it('sends the API key to no other host: a redirect fails the read', async () => {
    const collector = nock('https://collector.example').get(/.*/).reply(200, []);
    jc()
      .get(`/api/v2/usergroups/${ga}/members`)
      .query(true)
      .reply(302, '', { location: 'https://collector.example/api/v2/usergroups' })
      .get('/api/v2/usergroups')
      .query(true)
      .optionally()
      .reply(307, '', { location: 'https://collector.example/api/v2/usergroups' });
    const err = await source(groupsScope)
      .read()
      .catch((e: unknown) => e);

    expect(collector.isDone()).toBe(false);
    expect(err).toBeInstanceOf(SourceReadError);
    expect((err as Error).message).toMatch(/redirect \(HTTP 30[27]\) to https:\/\/collector\.example; tvsync sends credentials only to the configured host/);
    expect((err as SourceReadError).cause).toMatchObject({ failureClass: 'invalid' });
  });

  it('ends a request whose body trickles past the timeout, and stops at once when the read is cancelled', async () => {
    const server = await tricklingServer();
    // Real sockets: nock's stand-ins do not keep a socket's idle timer the way Node does.
    nock.restore();
    try {
      const baseUrl = `${server.origin}/api`;
      const err = await source({ ...groupsScope, baseUrl, orgId: undefined, timeout: 1000 })
        .read()
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SourceReadError);
      expect((err as Error).message).toMatch(/did not finish within 1 second \(timeout\)/);
      expect((err as SourceReadError).cause).toMatchObject({ failureClass: 'transient' });

      const stop = new AbortController();
      const cancelled = source({ ...groupsScope, baseUrl, orgId: undefined, timeout: 60_000 }).read({ signal: stop.signal });
      const seen = server.requests.length;
      while (server.requests.length === seen) await sleep(20);
      stop.abort();
      await expect(cancelled).rejects.toThrow(/the JumpCloud read was stopped/);
    } finally {
      nock.activate();
      server.close();
    }
  }, 20_000);

  it('fails at once, naming the wait, when JumpCloud asks to wait for days', async () => {
    const api = jc().get(`/api/v2/usergroups/${ga}/members`).query(true).reply(429, { message: 'slow down' }, { 'Retry-After': '999999' });
    jc().get('/api/v2/usergroups').query(true).optionally().reply(200, [], v2(0));
    const err = await source(groupsScope)
      .read()
      .catch((e: unknown) => e);

    expect(api.isDone()).toBe(true);
    expect(err).toBeInstanceOf(SourceReadError);
    expect((err as Error).message).toMatch(/throttled \(HTTP 429\): JumpCloud asks to wait 11\.6 days .* longer than tvsync waits within a read \(2 minutes\)/);
    expect((err as SourceReadError).cause).toMatchObject({ failureClass: 'rate-limited', retryAfterMs: 999_999_000 });
  }, 10_000);

  it('refuses an answer larger than it reads', async () => {
    jc()
      .get(`/api/v2/usergroups/${ga}/members`)
      .query(true)
      .reply(200, Buffer.alloc(33 * 1024 * 1024, 0x20), { 'content-type': 'application/json' })
      .get('/api/v2/usergroups')
      .query(true)
      .optionally()
      .reply(200, [], v2(0));
    await expect(source(groupsScope).read()).rejects.toThrow(/answered with more than 32 MiB; not read/);
  });
});
