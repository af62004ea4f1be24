import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import nock from 'nock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SyncError } from '../../src/model/failure.js';
import { SCIM_ERROR_SCHEMA, SCIM_GROUP_SCHEMA, SCIM_LIST_SCHEMA, SCIM_PATCH_SCHEMA, SCIM_USER_SCHEMA, SSO_USER_SCHEMA } from '../../src/model/teamviewer.js';
import { NoAnswerError } from '../../src/teamviewer/errors.js';
import { TeamViewerScimClient, scimFilterString, type ScimClientOptions } from '../../src/teamviewer/scim-client.js';

const HOST = 'https://tv.example.test';
const BASE = `${HOST}/scim/v2`;
const TOKEN = '9876543-SeCrEtScRiPtToKeN';

const client = (extra: Partial<ScimClientOptions> = {}) => new TeamViewerScimClient({ baseUrl: BASE, token: TOKEN, pageSize: 2, ...extra });

const scim = () => nock(HOST).matchHeader('authorization', `Bearer ${TOKEN}`);

const wireUser = (n: number, extra: Record<string, unknown> = {}) => ({
  schemas: [SCIM_USER_SCHEMA],
  id: `u${n}`,
  userName: `user${n}@example.test`,
  displayName: `User ${n}`,
  name: { formatted: `User ${n}`, givenName: 'User', familyName: String(n) },
  emails: [{ primary: true, value: `user${n}@example.test` }],
  active: true,
  ...extra,
});

const listPage = (resources: unknown[], totalResults?: number) => ({
  schemas: [SCIM_LIST_SCHEMA],
  ...(totalResults !== undefined ? { totalResults } : {}),
  startIndex: 0, // TeamViewer's own example echoes 0; it must not matter
  itemsPerPage: resources.length,
  Resources: resources,
});

const patchOf = (operations: nock.DataMatcherMap[]) => ({ schemas: [SCIM_PATCH_SCHEMA], Operations: operations });

const page = (startIndex: number, count = 2, extra: Record<string, string> = {}) => ({
  ...extra,
  startIndex: String(startIndex),
  count: String(count),
});

async function failure(promise: Promise<unknown>): Promise<SyncError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SyncError);
  return err as SyncError;
}

beforeEach(() => {
  nock.disableNetConnect();
});

afterEach(() => {
  const pending = nock.pendingMocks();
  nock.cleanAll();
  nock.enableNetConnect();
  expect(pending).toEqual([]);
});

describe('listUsers paging', () => {
  it('sends count and startIndex, asks for the positions still missing after a short page and ignores the echoed startIndex', async () => {
    scim()
      .get('/scim/v2/Users')
      .query(page(1))
      .reply(200, listPage([wireUser(1), wireUser(2)], 5), { 'Content-Type': 'application/scim+json' })
      // A page shorter than asked while totalResults says more remain: the server caps pages; the
      // position it left out is asked for again, nothing is skipped.
      .get('/scim/v2/Users')
      .query(page(3))
      .reply(200, listPage([wireUser(3)], 5))
      .get('/scim/v2/Users')
      .query(page(5, 1))
      .reply(200, listPage([wireUser(5)], 5))
      .get('/scim/v2/Users')
      .query(page(4, 1))
      .reply(200, listPage([wireUser(4)], 5));

    const users = await client().listUsers();
    expect(users.map((u) => u.id)).toEqual(['u1', 'u2', 'u3', 'u4', 'u5']);
    expect(users[0]).toEqual({
      id: 'u1',
      userName: 'user1@example.test',
      email: 'user1@example.test',
      displayName: 'User 1',
      active: true,
    });
  });

  it('asks for 1000 items a page unless told otherwise', async () => {
    scim()
      .get('/scim/v2/Users')
      .query(page(1, 1000))
      .reply(200, listPage([wireUser(1)], 1));
    expect(await new TeamViewerScimClient({ baseUrl: BASE, token: TOKEN }).listUsers()).toHaveLength(1);
  });

  it('refuses a page without totalResults instead of guessing the end from a short page', async () => {
    scim()
      .get('/scim/v2/Users')
      .query(page(1))
      .reply(200, listPage([wireUser(1), wireUser(2)]));
    const err = await failure(client().listUsers());
    expect(err.failureClass).toBe('transient');
    expect(err.message).toMatch(/^GET \/Users → 200 but the body is not a SCIM ListResponse \(totalResults: /);
  });

  it('stops once totalResults is reached, without asking for another page', async () => {
    scim()
      .get('/scim/v2/Users')
      .query(page(1))
      .reply(200, listPage([wireUser(1), wireUser(2)], 4))
      .get('/scim/v2/Users')
      .query(page(3))
      .reply(200, listPage([wireUser(3), wireUser(4)], 4));
    expect(await client().listUsers()).toHaveLength(4);
  });

  it('fails the read on an empty page while totalResults says more remain, never ending the list early', async () => {
    scim()
      .get('/scim/v2/Users')
      .query(page(1))
      .reply(200, listPage([wireUser(1), wireUser(2)], 5))
      .get('/scim/v2/Users')
      .query(page(3))
      .reply(200, listPage([], 5));
    const err = await failure(client().listUsers());
    expect(err.failureClass).toBe('transient');
    expect(err.message).toMatch(/page at startIndex 3 is empty while totalResults says 3 more remain/);
  });

  it('stops on a page that lists no Resources at all', async () => {
    scim()
      .get('/scim/v2/Users')
      .query(page(1, 100))
      .reply(200, { schemas: [SCIM_LIST_SCHEMA], totalResults: 0 });
    expect(await client({ pageSize: 100 }).listUsers()).toEqual([]);
  });

  it('fails clearly instead of looping when the server keeps sending the same page', async () => {
    scim()
      .get('/scim/v2/Users')
      .query(page(1))
      .reply(200, listPage([wireUser(1), wireUser(2)], 4))
      .get('/scim/v2/Users')
      .query(page(3))
      .reply(200, listPage([wireUser(1), wireUser(2)], 4));
    const err = await failure(client().listUsers());
    expect(err.failureClass).toBe('invalid');
    expect(err.retryable).toBe(false);
    expect(err.message).toMatch(/^GET \/Users → the page at startIndex 3 repeats items already received/);
  });

  it('takes a malformed page for a doubtful answer (transient), naming the endpoint and the field', async () => {
    const broken = { ...wireUser(2) } as Record<string, unknown>;
    delete broken.active;
    scim()
      .get('/scim/v2/Users')
      .query(page(1))
      .reply(200, listPage([wireUser(1), broken], 2));
    const err = await failure(client().listUsers());
    expect(err.failureClass).toBe('transient');
    expect(err.status).toBe(200);
    expect(err.maybeApplied).toBe(false);
    expect(err.message).toMatch(/^GET \/Users → 200 but the body is not a SCIM ListResponse \(Resources\.1\.active: /);
  });

  it('takes a non-JSON success body for a doubtful answer, not for an empty list', async () => {
    scim().get('/scim/v2/Users').query(page(1)).reply(200, '<html>login</html>');
    expect((await failure(client().listUsers())).failureClass).toBe('transient');
  });

  it('never reads a 200 carrying a SCIM error as an empty company, and says what the error said', async () => {
    scim()
      .get('/scim/v2/Users')
      .query(page(1))
      .reply(200, { schemas: [SCIM_ERROR_SCHEMA], status: '500', detail: 'backend unavailable' });
    const err = await failure(client().listUsers());
    expect(err.failureClass).toBe('transient');
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(/not a SCIM ListResponse .*it is a SCIM error: 500 backend unavailable/);
  });

  it('refuses a list whose schemas do not name ListResponse, and one with a missing id', async () => {
    scim()
      .get('/scim/v2/Users')
      .query(page(1))
      .reply(200, { ...listPage([wireUser(1)], 1), schemas: ['urn:x'] });
    expect((await failure(client().listUsers())).message).toMatch(/schemas: must name urn:ietf:params:scim:api:messages:2\.0:ListResponse/);
    const noId = { ...wireUser(1) } as Record<string, unknown>;
    delete noId.id;
    scim()
      .get('/scim/v2/Users')
      .query(page(1))
      .reply(200, listPage([noId], 1));
    expect((await failure(client().listUsers())).message).toMatch(/Resources\.0\.id/);
  });

  it('refuses counts that do not add up: totalResults changing between pages, more items than announced', async () => {
    scim()
      .get('/scim/v2/Users')
      .query(page(1))
      .reply(200, listPage([wireUser(1), wireUser(2)], 4))
      .get('/scim/v2/Users')
      .query(page(3))
      .reply(200, listPage([wireUser(3)], 3));
    expect((await failure(client().listUsers())).message).toMatch(/totalResults changed from 4 to 3/);
    scim()
      .get('/scim/v2/Users')
      .query(page(1))
      .reply(200, listPage([wireUser(1), wireUser(2)], 1));
    expect((await failure(client().listUsers())).message).toMatch(/sent 2 items, more than totalResults \(1\) leaves room for/);
  });

  it('checks the look-up by e-mail and the group list the same way', async () => {
    scim()
      .get('/scim/v2/Users')
      .query(true)
      .reply(200, { schemas: [SCIM_ERROR_SCHEMA], detail: 'try later' });
    expect((await failure(client().findUserByEmail('a@example.test'))).failureClass).toBe('transient');
    scim().get('/scim/v2/Groups').query(true).reply(200, { Resources: [] });
    expect((await failure(client().listGroups())).failureClass).toBe('transient');
  });

  it('reports every answer to the metrics hook with the route, not the concrete path', async () => {
    const seen: { method: string; path: string; status: number }[] = [];
    scim().get('/scim/v2/Users/u7').reply(404).get('/scim/v2/Users').query(page(1)).reply(200, listPage([], 0));
    const c = client({
      onResponse: ({ method, path, status, ms }) => {
        expect(ms).toBeGreaterThanOrEqual(0);
        seen.push({ method, path, status });
      },
    });
    await c.getUser('u7');
    await c.listUsers();
    expect(seen).toEqual([
      { method: 'GET', path: '/Users/{id}', status: 404 },
      { method: 'GET', path: '/Users', status: 200 },
    ]);
  });

  it('surfaces the caller’s abort reason, not a sync failure', async () => {
    scim().get('/scim/v2/Users').query(page(1)).delay(1000).reply(200, listPage([], 0));
    const controller = new AbortController();
    const pending = client().listUsers({ signal: controller.signal });
    setTimeout(() => controller.abort(new Error('shutting down')), 20);
    await expect(pending).rejects.toThrow('shutting down');
    nock.abortPendingRequests();
  });
});

describe('parallel list reads', () => {
  interface Asked {
    startIndex: number;
    count: number;
    inFlight: number;
  }
  type Answer = { status: number; body: unknown; headers?: Record<string, string> };

  /**
   * A user list of `total` users that sends at most `cap` a page, after `delayMs(startIndex)`;
   * `lie` may answer a request itself, with what the honest page would have been at hand.
   */
  async function listServer(opts: {
    total: number;
    cap?: number;
    delayMs?: (startIndex: number) => number;
    lie?: (asked: Asked, honest: { totalResults: number; resources: unknown[] }, nth: number) => Answer | undefined;
  }) {
    const asked: Asked[] = [];
    let inFlight = 0;
    let most = 0;
    const server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const startIndex = Number(url.searchParams.get('startIndex'));
      const count = Number(url.searchParams.get('count'));
      inFlight++;
      most = Math.max(most, inFlight);
      const call = { startIndex, count, inFlight };
      asked.push(call);
      const nth = asked.filter((a) => a.startIndex === startIndex).length;
      const size = Math.min(count, opts.cap ?? Number.POSITIVE_INFINITY);
      const resources = Array.from({ length: Math.max(0, Math.min(size, opts.total - startIndex + 1)) }, (_, i) => wireUser(startIndex + i));
      const answer = opts.lie?.(call, { totalResults: opts.total, resources }, nth) ?? { status: 200, body: listPage(resources, opts.total) };
      setTimeout(() => {
        inFlight--;
        res.writeHead(answer.status, { 'content-type': 'application/scim+json', ...answer.headers });
        res.end(JSON.stringify(answer.body));
      }, opts.delayMs?.(startIndex) ?? 1);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    servers.push(server);
    return { baseUrl: `http://127.0.0.1:${port}/scim/v2`, asked, mostInFlight: () => most };
  }
  const servers: ReturnType<typeof createServer>[] = [];
  const ids = (n: number) => Array.from({ length: n }, (_, i) => `u${i + 1}`);
  const reader = (baseUrl: string, extra: Partial<ScimClientOptions> = {}) =>
    new TeamViewerScimClient({ baseUrl, token: TOKEN, pageSize: 3, readConcurrency: 4, ...extra });

  beforeEach(() => nock.enableNetConnect('127.0.0.1'));
  afterEach(async () => {
    await Promise.all(
      servers.splice(0).map(
        (server) =>
          new Promise<void>((resolve) => {
            server.closeAllConnections();
            server.close(() => resolve());
          }),
      ),
    );
  });

  it('reads the first page alone, then the others at most readConcurrency at a time, and returns them in TeamViewer’s order', async () => {
    // Later pages answer sooner, so the answers arrive out of order.
    const tv = await listServer({ total: 23, delayMs: (start) => 100 - start * 4 });
    const users = await reader(tv.baseUrl, { readConcurrency: 3 }).listUsers();
    expect(users.map((u) => u.id)).toEqual(ids(23));
    expect(tv.asked[0]).toEqual({ startIndex: 1, count: 3, inFlight: 1 });
    expect(tv.asked.map((a) => a.startIndex).sort((a, b) => a - b)).toEqual([1, 4, 7, 10, 13, 16, 19, 22]);
    expect(tv.asked.find((a) => a.startIndex === 22)?.count).toBe(2);
    expect(tv.mostInFlight()).toBe(3);
  });

  it('follows a server that sends fewer than asked: its page size becomes the stride, and nothing is skipped', async () => {
    const tv = await listServer({ total: 50, cap: 7 });
    const users = await reader(tv.baseUrl, { pageSize: 1000 }).listUsers();
    expect(users.map((u) => u.id)).toEqual(ids(50));
    expect(tv.asked[0]).toMatchObject({ startIndex: 1, count: 1000 });
    expect(
      tv.asked
        .slice(1)
        .map((a) => [a.startIndex, a.count])
        .sort(([a], [b]) => (a ?? 0) - (b ?? 0)),
    ).toEqual([
      [8, 7],
      [15, 7],
      [22, 7],
      [29, 7],
      [36, 7],
      [43, 7],
      [50, 1],
    ]);
  });

  it('asks again for the positions a short page in the middle left out', async () => {
    const tv = await listServer({
      total: 12,
      lie: ({ startIndex }, honest) => (startIndex === 7 ? { status: 200, body: listPage(honest.resources.slice(0, 1), 12) } : undefined),
    });
    expect((await reader(tv.baseUrl).listUsers()).map((u) => u.id)).toEqual(ids(12));
    expect(tv.asked.filter((a) => a.startIndex === 8)).toEqual([expect.objectContaining({ count: 2 })]);
  });

  it('fails the read, without a partial list, on every lie a later page can tell', async () => {
    const lies: [string, NonNullable<Parameters<typeof listServer>[0]['lie']>, RegExp][] = [
      [
        'totalResults differs',
        ({ startIndex }, h) => (startIndex === 10 ? { status: 200, body: listPage(h.resources, 13) } : undefined),
        /totalResults changed from 12 to 13/,
      ],
      [
        'an empty page in the middle',
        ({ startIndex }) => (startIndex === 7 ? { status: 200, body: listPage([], 12) } : undefined),
        /page at startIndex 7 is empty while totalResults says/,
      ],
      [
        'an item of another page',
        ({ startIndex }, h) => (startIndex === 10 ? { status: 200, body: listPage([h.resources[0], wireUser(2), h.resources[2]], 12) } : undefined),
        /u2 came at two positions: the list changed while it was read/,
      ],
      [
        'items past totalResults',
        ({ startIndex }, h) => (startIndex === 10 ? { status: 200, body: listPage([...h.resources, wireUser(13)], 12) } : undefined),
        /page at startIndex 10 sent 4 items, more than totalResults \(12\) leaves room for/,
      ],
      [
        'two pages that disagree on a position',
        ({ startIndex }, h) => (startIndex === 4 ? { status: 200, body: listPage([...h.resources, wireUser(99)], 12) } : undefined),
        /position 7 came back as u(7|99) and as u(7|99): the list changed/,
      ],
      [
        'a 200 carrying an error',
        ({ startIndex }) => (startIndex === 7 ? { status: 200, body: { schemas: [SCIM_ERROR_SCHEMA], detail: 'busy' } } : undefined),
        /not a SCIM ListResponse/,
      ],
    ];
    for (const [what, lie, message] of lies) {
      const tv = await listServer({ total: 12, lie });
      const err = await failure(reader(tv.baseUrl).listUsers());
      expect(err.failureClass, what).toBe('transient');
      expect(err.message, what).toMatch(message);
    }
  });

  it('takes a later page that repeats the first for a server ignoring startIndex', async () => {
    const tv = await listServer({
      total: 12,
      lie: ({ startIndex }) =>
        startIndex > 1
          ? {
              status: 200,
              body: listPage(
                [1, 2, 3].map((n) => wireUser(n)),
                12,
              ),
            }
          : undefined,
    });
    const err = await failure(reader(tv.baseUrl).listUsers());
    expect(err.failureClass).toBe('invalid');
    expect(err.message).toMatch(/repeats items already received: TeamViewer seems to ignore startIndex/);
  });

  it('starts no page after one failed', async () => {
    const tv = await listServer({
      total: 60,
      lie: ({ startIndex }) => (startIndex === 4 ? { status: 500, body: { schemas: [SCIM_ERROR_SCHEMA], detail: 'boom' } } : undefined),
      delayMs: (start) => (start === 4 ? 1 : 50),
    });
    const err = await failure(reader(tv.baseUrl, { readConcurrency: 2 }).listUsers());
    expect(err.failureClass).toBe('transient');
    expect(err.status).toBe(500);
    // The first page, the failed one and the one beside it in flight; none of the other 17.
    expect(tv.asked.length).toBeLessThanOrEqual(3);
  });

  it('waits as told when a later page is answered 429, and asks that page again instead of starting over', async () => {
    const tv = await listServer({
      total: 9,
      lie: ({ startIndex }, _h, nth) =>
        startIndex === 4 && nth === 1 ? { status: 429, body: { error: 'rate_limit_reached' }, headers: { 'retry-after': '0' } } : undefined,
    });
    expect((await reader(tv.baseUrl).listUsers()).map((u) => u.id)).toEqual(ids(9));
    expect(tv.asked.map((a) => a.startIndex).sort((a, b) => a - b)).toEqual([1, 4, 4, 7]);
  });

  it('leaves a 429 on the first page to the caller', async () => {
    const tv = await listServer({
      total: 9,
      lie: ({ startIndex }) => (startIndex === 1 ? { status: 429, body: {}, headers: { 'retry-after': '3' } } : undefined),
    });
    const err = await failure(reader(tv.baseUrl).listUsers());
    expect(err.failureClass).toBe('rate-limited');
    expect(err.retryAfterMs).toBe(3000);
    expect(tv.asked).toHaveLength(1);
  });

  it('sends every page through the page slot', async () => {
    const tv = await listServer({ total: 10 });
    let slotted = 0;
    const groups = await reader(tv.baseUrl, {
      pageSlot: (task) => {
        slotted++;
        return task();
      },
    }).listGroups();
    expect(groups).toHaveLength(10);
    expect(slotted).toBe(tv.asked.length);
    expect(slotted).toBe(4);
  });

  it('ends the pages in flight with the caller’s abort reason', async () => {
    const tv = await listServer({ total: 30, delayMs: (start) => (start === 1 ? 1 : 2000) });
    const controller = new AbortController();
    const pending = reader(tv.baseUrl).listUsers({ signal: controller.signal });
    setTimeout(() => controller.abort(new Error('shutting down')), 100);
    await expect(pending).rejects.toThrow('shutting down');
  });
});

describe('userPage', () => {
  it('reads one page with the company count, and asks for no other', async () => {
    scim()
      .get('/scim/v2/Users')
      .query(page(1, 1))
      .reply(200, listPage([wireUser(1)], 5));
    expect(await client().userPage({ count: 1 })).toEqual({
      totalResults: 5,
      users: [{ id: 'u1', userName: 'user1@example.test', email: 'user1@example.test', displayName: 'User 1', active: true }],
    });
  });

  it('takes a 200 that is not a user list for a doubtful answer, like the list read', async () => {
    scim().get('/scim/v2/Users').query(page(1, 1)).reply(200, '<html>login</html>');
    const err = await failure(client().userPage({ count: 1 }));
    expect([err.failureClass, err.status]).toEqual(['transient', 200]);
  });
});

describe('single users', () => {
  it('gets a user, reading the primary e-mail, and returns undefined on 404', async () => {
    scim()
      .get('/scim/v2/Users/u42')
      .reply(
        200,
        wireUser(42, {
          emails: [{ value: 'old@example.test' }, { value: 'Jane@Example.test', primary: true }],
          displayName: undefined,
          name: { formatted: 'Jane Doe' },
          active: false,
        }),
      )
      .get('/scim/v2/Users/u404')
      .reply(404, { schemas: [SCIM_ERROR_SCHEMA], status: '404', detail: 'User not found' });
    const c = client();
    expect(await c.getUser('u42')).toEqual({
      id: 'u42',
      userName: 'user42@example.test',
      email: 'Jane@Example.test',
      displayName: 'Jane Doe',
      active: false,
    });
    expect(await c.getUser('u404')).toBeUndefined();
  });

  it('finds by the exact address first, then by its lower case', async () => {
    scim()
      .get('/scim/v2/Users')
      .query(page(1, 2, { filter: 'userName eq "Jane.Doe@Example.test"' }))
      .reply(200, listPage([], 0))
      .get('/scim/v2/Users')
      .query(page(1, 2, { filter: 'userName eq "jane.doe@example.test"' }))
      .reply(200, listPage([wireUser(7, { userName: 'jane.doe@example.test' })], 1));
    const found = await client().findUserByEmail('Jane.Doe@Example.test');
    expect(found?.id).toBe('u7');
  });

  it('also asks for the composed (NFC) form of an address typed decomposed', async () => {
    const decomposed = 'rene\u0301@example.test';
    scim()
      .get('/scim/v2/Users')
      .query(page(1, 2, { filter: `userName eq "${decomposed}"` }))
      .reply(200, listPage([], 0))
      .get('/scim/v2/Users')
      .query(page(1, 2, { filter: 'userName eq "ren\u00e9@example.test"' }))
      .reply(200, listPage([wireUser(9, { userName: 'ren\u00e9@example.test' })], 1));
    expect((await client().findUserByEmail(decomposed))?.id).toBe('u9');
  });

  it('asks once when the address is already lower case, and sends the filter with %20 spaces', async () => {
    scim()
      .get('/scim/v2/Users?filter=userName%20eq%20%22jane%40example.test%22&startIndex=1&count=2')
      .reply(200, listPage([wireUser(8, { userName: 'jane@example.test' })], 1));
    expect((await client().findUserByEmail('jane@example.test'))?.id).toBe('u8');
  });

  it('escapes quotes and backslashes in the filter value', async () => {
    expect(scimFilterString('a"b\\c')).toBe('"a\\"b\\\\c"');
    scim()
      .get('/scim/v2/Users')
      .query(page(1, 2, { filter: 'userName eq "o\\"brien\\\\x@example.test"' }))
      .reply(200, listPage([], 0));
    expect(await client().findUserByEmail('o"brien\\x@example.test')).toBeUndefined();
  });

  it('does not take a user the filter should have excluded', async () => {
    scim()
      .get('/scim/v2/Users')
      .query(page(1, 2, { filter: 'userName eq "nobody@example.test"' }))
      .reply(200, listPage([wireUser(1)], 1));
    expect(await client().findUserByEmail('nobody@example.test')).toBeUndefined();
  });
});

describe('createUser', () => {
  it('posts the full SSO user with language and returns the created user', async () => {
    let sent: unknown;
    scim()
      .matchHeader('content-type', 'application/scim+json')
      .matchHeader('accept', 'application/scim+json, application/json')
      .post('/scim/v2/Users', (body: unknown) => {
        sent = body;
        return true;
      })
      .reply(201, wireUser(9, { userName: 'Jane.Doe@example.test', displayName: 'Jane Mary Doe' }));
    const created = await client().createUser({
      userName: 'Jane.Doe@example.test',
      displayName: 'Jane Mary Doe',
      active: true,
      preferredLanguage: 'de',
      ssoCustomerId: 'a1b2c3',
    });
    expect(sent).toEqual({
      schemas: [SCIM_USER_SCHEMA, SSO_USER_SCHEMA],
      userName: 'Jane.Doe@example.test',
      displayName: 'Jane Mary Doe',
      emails: [{ value: 'Jane.Doe@example.test', primary: true }],
      name: { formatted: 'Jane Mary Doe', givenName: 'Jane', familyName: 'Mary Doe' },
      active: true,
      preferredLanguage: 'de',
      [SSO_USER_SCHEMA]: { ssoCustomerId: 'a1b2c3' },
    });
    expect(created.id).toBe('u9');
  });

  it('posts a plain user without extension, language or name parts for a one-word name; accepts 200', async () => {
    let sent: unknown;
    scim()
      .post('/scim/v2/Users', (body: unknown) => {
        sent = body;
        return true;
      })
      .reply(200, wireUser(10, { active: false, userName: 'cher@example.test' }));
    const created = await client().createUser({ userName: 'cher@example.test', displayName: 'Cher', active: false });
    expect(sent).toEqual({
      schemas: [SCIM_USER_SCHEMA],
      userName: 'cher@example.test',
      displayName: 'Cher',
      emails: [{ value: 'cher@example.test', primary: true }],
      name: { formatted: 'Cher' },
      active: false,
    });
    expect(created.active).toBe(false);
  });

  it('marks an unreadable 201 as transient and maybe applied, so the retry looks first', async () => {
    scim()
      .post('/scim/v2/Users')
      .reply(201, { schemas: [SCIM_USER_SCHEMA] });
    const err = await failure(client().createUser({ userName: 'a@example.test', displayName: 'A', active: true }));
    expect(err.failureClass).toBe('transient');
    expect(err.maybeApplied).toBe(true);
    expect(err.message).toMatch(/^POST \/Users → 201 but the body is not a SCIM User \(id: /);
  });
});

describe('updateUser', () => {
  it('sends one replace per changed attribute', async () => {
    scim()
      .matchHeader('content-type', 'application/scim+json')
      .patch(
        '/scim/v2/Users/u3',
        patchOf([
          { op: 'replace', path: 'displayName', value: 'New Name' },
          { op: 'replace', path: 'active', value: false },
        ]),
      )
      .reply(200, wireUser(3, { displayName: 'New Name', active: false }));
    expect(await client().updateUser('u3', { displayName: 'New Name', active: false })).toMatchObject({
      displayName: 'New Name',
      active: false,
    });
  });

  it('deactivates and reactivates with a single active replace', async () => {
    scim()
      .patch('/scim/v2/Users/u3', patchOf([{ op: 'replace', path: 'active', value: false }]))
      .reply(200, wireUser(3, { active: false }))
      .patch('/scim/v2/Users/u3', patchOf([{ op: 'replace', path: 'active', value: true }]))
      .reply(200, wireUser(3, { active: true }));
    const c = client();
    expect((await c.deactivateUser('u3')).active).toBe(false);
    expect((await c.reactivateUser('u3')).active).toBe(true);
  });

  it('refuses a call without changes, before any request', async () => {
    await expect(client().updateUser('u3', {})).rejects.toThrow('without any change');
  });

  it('offers no way to delete a user', () => {
    const methods = Object.getOwnPropertyNames(TeamViewerScimClient.prototype);
    expect(methods.filter((m) => /delete|remove/i.test(m))).toEqual(['removeGroupMembers', 'deleteGroup']);
  });
});

describe('getTokenOwner', () => {
  it('reads /api/v1/account next to the SCIM base by default', async () => {
    nock(HOST)
      .matchHeader('authorization', `Bearer ${TOKEN}`)
      .get('/api/v1/account')
      .reply(200, { userid: 'u100', email: 'admin@example.test', name: 'Admin', company_name: 'Acme' });
    expect(await client().getTokenOwner()).toEqual({ id: 'u100', email: 'admin@example.test', name: 'Admin' });
  });

  it('uses a configured Web API base', async () => {
    nock('https://eu.example.test').get('/tv/api/v1/account').reply(200, { email: 'admin@example.test' });
    expect(await client({ webApiBaseUrl: 'https://eu.example.test/tv/api/v1/' }).getTokenOwner()).toEqual({
      email: 'admin@example.test',
    });
  });

  it.each([403, 404])('returns undefined on %i', async (status) => {
    nock(HOST).get('/api/v1/account').reply(status, { error: 'invalid_permission', error_description: 'no', error_code: status });
    expect(await client().getTokenOwner()).toBeUndefined();
  });

  it('throws other failures classified', async () => {
    nock(HOST).get('/api/v1/account').reply(401, { error: 'invalid_token', error_description: 'Token invalid', error_code: 401 });
    const err = await failure(client().getTokenOwner());
    expect(err.failureClass).toBe('unauthorised');
    expect(err.message).toMatch(/^GET \/account → 401 unauthorised \(invalid_token\): Token invalid\./);
  });
});

describe('groups', () => {
  const wireGroup = (id: string, name: string, members?: string[]) => ({
    schemas: [SCIM_GROUP_SCHEMA],
    id,
    displayName: name,
    ...(members ? { members: members.map((value) => ({ value, display: value })) } : {}),
  });

  it('lists groups page by page, reading absent members as none', async () => {
    scim()
      .get('/scim/v2/Groups')
      .query(page(1))
      .reply(200, listPage([wireGroup('g1', 'Sales', ['u1', 'u2']), wireGroup('g2', 'Empty')], 3))
      .get('/scim/v2/Groups')
      .query(page(3, 1))
      .reply(200, listPage([{ id: 3, displayName: 'Numeric', members: [{ value: 'u3' }] }], 3));
    expect(await client().listGroups()).toEqual([
      { id: 'g1', displayName: 'Sales', memberIds: ['u1', 'u2'] },
      { id: 'g2', displayName: 'Empty', memberIds: [] },
      { id: '3', displayName: 'Numeric', memberIds: ['u3'] },
    ]);
  });

  it('finds a group by its exact name', async () => {
    scim()
      .get('/scim/v2/Groups')
      .query(page(1, 2, { filter: 'displayName eq "R&D \\"Core\\""' }))
      .reply(200, listPage([wireGroup('g5', 'R&D "Core"', ['u1'])], 1))
      .get('/scim/v2/Groups')
      .query(page(1, 2, { filter: 'displayName eq "Nope"' }))
      .reply(200, listPage([], 0));
    const c = client();
    expect(await c.findGroupByName('R&D "Core"')).toEqual({ id: 'g5', displayName: 'R&D "Core"', memberIds: ['u1'] });
    expect(await c.findGroupByName('Nope')).toBeUndefined();
  });

  it('creates a group with members', async () => {
    scim()
      .post('/scim/v2/Groups', { schemas: [SCIM_GROUP_SCHEMA], displayName: 'Sales', members: [{ value: 'u1' }, { value: 'u2' }] })
      .reply(201, wireGroup('g1', 'Sales', ['u1', 'u2']));
    expect(await client().createGroup('Sales', ['u1', 'u2'])).toEqual({
      id: 'g1',
      displayName: 'Sales',
      memberIds: ['u1', 'u2'],
    });
  });

  it('creates an empty group, and keeps the members sent when the answer leaves them out', async () => {
    scim()
      .post('/scim/v2/Groups', { schemas: [SCIM_GROUP_SCHEMA], displayName: 'Empty' })
      .reply(201, wireGroup('g2', 'Empty'))
      .post('/scim/v2/Groups', { schemas: [SCIM_GROUP_SCHEMA], displayName: 'Quiet', members: [{ value: 'u9' }] })
      .reply(200, wireGroup('g3', 'Quiet'));
    const c = client();
    expect(await c.createGroup('Empty', [])).toEqual({ id: 'g2', displayName: 'Empty', memberIds: [] });
    expect(await c.createGroup('Quiet', ['u9'])).toEqual({ id: 'g3', displayName: 'Quiet', memberIds: ['u9'] });
  });

  it('renames with a displayName replace', async () => {
    scim()
      .patch('/scim/v2/Groups/g1', patchOf([{ op: 'replace', path: 'displayName', value: 'Sales EMEA' }]))
      .reply(204);
    await expect(client().renameGroup('g1', 'Sales EMEA')).resolves.toBeUndefined();
  });

  it('adds members in one add operation', async () => {
    scim()
      .patch('/scim/v2/Groups/g1', patchOf([{ op: 'add', path: 'members', value: [{ value: 'u1' }, { value: 'u2' }] }]))
      .reply(200, wireGroup('g1', 'Sales', ['u1', 'u2']));
    await client().addGroupMembers('g1', ['u1', 'u2']);
  });

  it('removes members with one remove operation each, in one request', async () => {
    scim()
      .patch(
        '/scim/v2/Groups/g1',
        patchOf([
          { op: 'remove', path: 'members[value eq "u1"]' },
          { op: 'remove', path: 'members[value eq "u2"]' },
        ]),
      )
      .reply(204);
    await client().removeGroupMembers('g1', ['u1', 'u2']);
  });

  it('refuses empty member lists before any request', async () => {
    await expect(client().addGroupMembers('g1', [])).rejects.toThrow('without members');
    await expect(client().removeGroupMembers('g1', [])).rejects.toThrow('without members');
  });

  it('deletes a group, and counts a 404 as already gone', async () => {
    scim().delete('/scim/v2/Groups/g1').reply(204).delete('/scim/v2/Groups/g2').reply(404);
    const c = client();
    await expect(c.deleteGroup('g1')).resolves.toBeUndefined();
    await expect(c.deleteGroup('g2')).resolves.toBeUndefined();
  });

  it('reports a missing /Groups endpoint as unavailable', async () => {
    scim().get('/scim/v2/Groups').query(page(1)).reply(404, 'Not Found');
    const err = await failure(client().listGroups());
    expect(err.failureClass).toBe('unavailable');
    expect(err.status).toBe(404);
    expect(err.message).toMatch(/^GET \/Groups → 404 unavailable: /);
  });

  it('reports an unsupported group PATCH as unavailable but a vanished group as not-found', async () => {
    scim()
      .patch('/scim/v2/Groups/g1')
      .reply(405, { schemas: [SCIM_ERROR_SCHEMA], status: '405', detail: 'Method not allowed' })
      .patch('/scim/v2/Groups/g2')
      .reply(404, { schemas: [SCIM_ERROR_SCHEMA], status: '404', detail: 'Group not found' });
    const c = client();
    expect((await failure(c.renameGroup('g1', 'x'))).failureClass).toBe('unavailable');
    const gone = await failure(c.addGroupMembers('g2', ['u1']));
    expect(gone.failureClass).toBe('not-found');
    expect(gone.message).toBe('PATCH /Groups/g2 → 404 not-found: Group not found');
  });

  it('classifies a failed delete', async () => {
    scim().delete('/scim/v2/Groups/g1').reply(403, { error: 'invalid_permission', error_description: 'Denied', error_code: 403 });
    expect((await failure(client().deleteGroup('g1'))).failureClass).toBe('forbidden');
  });
});

describe('failures', () => {
  const newUser = { userName: 'a@example.test', displayName: 'A B', active: true };

  it('429 with Retry-After in seconds', async () => {
    scim().get('/scim/v2/Users/u1').reply(429, 'Too Many Requests', { 'Retry-After': '12' });
    const err = await failure(client().getUser('u1'));
    expect([err.failureClass, err.retryAfterMs, err.status]).toEqual(['rate-limited', 12_000, 429]);
  });

  it('429 with Retry-After as an HTTP date', async () => {
    const at = new Date(Date.now() + 30_000).toUTCString();
    scim().get('/scim/v2/Users/u1').reply(429, '', { 'Retry-After': at });
    const err = await failure(client().getUser('u1'));
    expect(err.failureClass).toBe('rate-limited');
    expect(err.retryAfterMs).toBeGreaterThan(25_000);
    expect(err.retryAfterMs).toBeLessThanOrEqual(30_000);
  });

  it('429 with a Web API rate_limit_reached body', async () => {
    scim().get('/scim/v2/Users/u1').reply(429, { error: 'rate_limit_reached', error_description: 'Rate limit reached', error_code: 429 });
    const err = await failure(client().getUser('u1'));
    expect(err.failureClass).toBe('rate-limited');
    expect(err.retryAfterMs).toBeUndefined();
    expect(err.message).toMatch(/^GET \/Users\/u1 → 429 rate-limited \(rate_limit_reached\): Rate limit reached\./);
  });

  it.each([500, 502, 503])('%i is transient; on a create it may have been applied', async (status) => {
    scim().get('/scim/v2/Users/u1').reply(status).post('/scim/v2/Users').reply(status, 'upstream error');
    const c = client();
    const read = await failure(c.getUser('u1'));
    const create = await failure(c.createUser(newUser));
    expect([read.failureClass, read.maybeApplied]).toEqual(['transient', false]);
    expect([create.failureClass, create.maybeApplied, create.status]).toEqual(['transient', true, status]);
  });

  it('a reset connection is transient', async () => {
    scim()
      .get('/scim/v2/Users/u1')
      .replyWithError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
    const err = await failure(client().getUser('u1'));
    expect(err.failureClass).toBe('transient');
    expect(err.status).toBeUndefined();
    expect(err.message).toMatch(/^GET \/Users\/u1 → ECONNRESET transient: the connection failed\./);
    expect(err).toBeInstanceOf(NoAnswerError);
    expect((err as NoAnswerError).code).toBe('ECONNRESET');
  });

  it('a timeout is transient, and on a create may have been applied', async () => {
    scim().post('/scim/v2/Users').delay(500).reply(201, wireUser(1));
    const err = await failure(client({ timeoutMs: 50 }).createUser(newUser));
    expect(err.failureClass).toBe('transient');
    expect(err.maybeApplied).toBe(true);
    expect(err.message).toMatch(/no whole answer in time/);
    nock.abortPendingRequests();
  });

  it('401 stops with advice on the token', async () => {
    scim()
      .get('/scim/v2/Users')
      .query(true)
      .reply(401, { schemas: [SCIM_ERROR_SCHEMA], status: '401', detail: 'Unauthorized' });
    const err = await failure(client().listUsers());
    expect(err.failureClass).toBe('unauthorised');
    expect(err.message).toMatch(/^GET \/Users → 401 unauthorised: Unauthorized\. The TeamViewer script token/);
  });

  it('403 is forbidden', async () => {
    scim()
      .patch('/scim/v2/Users/u1')
      .reply(403, { schemas: [SCIM_ERROR_SCHEMA], status: '403', detail: 'Admin' });
    expect((await failure(client().deactivateUser('u1'))).failureClass).toBe('forbidden');
  });

  it('404 on an update is not-found', async () => {
    scim().patch('/scim/v2/Users/u404').reply(404, { error: 'not_found', error_description: 'User not found', error_code: 404 });
    const err = await failure(client().deactivateUser('u404'));
    expect(err.failureClass).toBe('not-found');
    expect(err.message).toBe('PATCH /Users/u404 → 404 not-found (not_found): User not found');
  });

  it('409 uniqueness is a conflict', async () => {
    scim()
      .post('/scim/v2/Users')
      .reply(409, { schemas: [SCIM_ERROR_SCHEMA], status: '409', scimType: 'uniqueness', detail: 'User already exists' });
    const err = await failure(client().createUser(newUser));
    expect(err.failureClass).toBe('conflict');
    expect(err.maybeApplied).toBe(false);
    expect(err.message).toBe('POST /Users → 409 conflict (uniqueness): User already exists');
  });

  it('400 is invalid', async () => {
    scim().post('/scim/v2/Users').reply(400, { error: 'invalid_request', error_description: 'Name is too long', error_code: 400 });
    const err = await failure(client().createUser(newUser));
    expect(err.failureClass).toBe('invalid');
    expect(err.message).toBe('POST /Users → 400 invalid (invalid_request): Name is too long');
  });

  it('a redirect is not followed with the token', async () => {
    scim().get('/scim/v2/Users/u1').reply(302, '', { Location: 'https://elsewhere.example.test/' });
    const err = await failure(client().getUser('u1'));
    expect(err.failureClass).toBe('invalid');
    expect(err.status).toBe(302);
  });

  it('never lets the token into an error, its serialisations or its stack', async () => {
    scim()
      .get('/scim/v2/Users/u1')
      .replyWithError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }))
      .get('/scim/v2/Users/u2')
      .reply(401, `invalid token Bearer ${TOKEN}`)
      .post('/scim/v2/Users')
      .reply(500)
      .post('/scim/v2/Users')
      .delay(500)
      .reply(201, wireUser(1));
    const errors = [
      await failure(client().getUser('u1')),
      await failure(client().getUser('u2')),
      await failure(client().createUser(newUser)),
      await failure(client({ timeoutMs: 50 }).createUser(newUser)),
    ];
    nock.abortPendingRequests();
    for (const err of errors) {
      for (const text of [JSON.stringify(err), String(err), err.stack ?? '', inspect(err, { depth: 10 })]) {
        expect(text).not.toContain(TOKEN);
        expect(text).not.toContain('SeCrEt');
      }
      expect(err.cause).toBeUndefined();
    }
  });
});

describe('servers that trickle, flood or echo the token', () => {
  async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ url: string; close: () => Promise<void> }> {
    const server = createServer(handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    return {
      url: `http://127.0.0.1:${port}/scim/v2`,
      close: () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    };
  }

  beforeEach(() => nock.enableNetConnect('127.0.0.1'));

  it('ends a body that trickles a byte at a time at the request deadline', async () => {
    const timers: NodeJS.Timeout[] = [];
    const fake = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/scim+json' });
      const tick = setInterval(() => res.write(' '), 50);
      timers.push(tick);
    });
    try {
      const started = Date.now();
      const err = await failure(new TeamViewerScimClient({ baseUrl: fake.url, token: TOKEN, timeoutMs: 400 }).listUsers());
      expect(err.failureClass).toBe('transient');
      expect(err.message).toMatch(/ETIMEDOUT.*no whole answer in time/);
      // The socket never went quiet for 400 ms, so only a deadline on the whole exchange ends it.
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      for (const t of timers) clearInterval(t);
      await fake.close();
    }
  });

  it('refuses an answer larger than it will hold', async () => {
    const fake = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/scim+json' });
      const chunk = Buffer.alloc(1024 * 1024, 0x20);
      let sent = 0;
      const pump = () => {
        while (sent < 40 && res.write(chunk)) sent++;
        if (sent < 40) res.once('drain', pump);
        else res.end();
      };
      pump();
    });
    try {
      const err = await failure(new TeamViewerScimClient({ baseUrl: fake.url, token: TOKEN }).listUsers());
      expect(err.failureClass).toBe('transient');
      expect(err.message).toMatch(/larger than tvsync accepts/);
    } finally {
      await fake.close();
    }
  });

  it('refuses an answer whose Content-Length is over the cap before reading it', async () => {
    const fake = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/scim+json', 'content-length': String(64 * 1024 * 1024) });
      res.write('{');
    });
    try {
      const err = await failure(new TeamViewerScimClient({ baseUrl: fake.url, token: TOKEN }).listUsers());
      expect(err.message).toMatch(/ERR_BODY_TOO_LARGE transient: the answer was larger than tvsync accepts/);
    } finally {
      await fake.close();
    }
  });

  it('takes a connection closed before the end of the body for a failure, never for a short answer', async () => {
    const whole = JSON.stringify(listPage([wireUser(1), wireUser(2)], 2));
    const fake = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/scim+json', 'content-length': String(Buffer.byteLength(whole)) });
      // Half the body, then the connection goes.
      res.write(whole.slice(0, whole.length / 2), () => res.socket?.destroy());
    });
    try {
      const err = await failure(new TeamViewerScimClient({ baseUrl: fake.url, token: TOKEN }).listUsers());
      expect(err.failureClass).toBe('transient');
      expect(err.message).toMatch(/ECONNRESET transient: the connection failed/);
    } finally {
      await fake.close();
    }
  });

  it('ends a request whose socket stays silent, and says it timed out', async () => {
    const fake = await serve(() => undefined);
    try {
      const err = await failure(new TeamViewerScimClient({ baseUrl: fake.url, token: TOKEN, timeoutMs: 300 }).getUser('u1'));
      expect(err.message).toMatch(/^GET \/Users\/u1 → ETIMEDOUT transient: no whole answer in time/);
    } finally {
      await fake.close();
    }
  });

  it('reuses one kept-alive connection for requests one after another', async () => {
    const sockets = new Set<unknown>();
    const fake = await serve((req, res) => {
      sockets.add(req.socket);
      res.writeHead(200, { 'content-type': 'application/scim+json' });
      res.end(JSON.stringify(wireUser(1)));
    });
    try {
      const c = new TeamViewerScimClient({ baseUrl: fake.url, token: TOKEN });
      for (let i = 0; i < 5; i++) expect((await c.getUser('u1'))?.id).toBe('u1');
      expect(sockets.size).toBe(1);
    } finally {
      await fake.close();
    }
  });

  it('keeps no fragment of a token the server echoes, URL-encoded, base64-encoded or cut', async () => {
    const token = 'tv-Echo/Token+Value=42-abcdefghijklmnopqrstuvwxyz0123456789';
    const fake = await serve((req, res) => {
      const auth = String(req.headers.authorization);
      const echoed = `${'padding '.repeat(35)} auth=${encodeURIComponent(auth)} b64=${Buffer.from(auth).toString('base64')} raw=${auth}`;
      res.writeHead(401, { 'content-type': 'application/scim+json' });
      res.end(JSON.stringify({ schemas: [SCIM_ERROR_SCHEMA], status: '401', detail: echoed }));
    });
    try {
      const err = await failure(new TeamViewerScimClient({ baseUrl: fake.url, token }).listUsers());
      const text = `${err.message} ${inspect(err)}`;
      for (const form of [token, encodeURIComponent(token), Buffer.from(`Bearer ${token}`).toString('base64')]) {
        for (let i = 0; i + 8 <= form.length; i += 4) expect(text).not.toContain(form.slice(i, i + 8));
      }
    } finally {
      await fake.close();
    }
  });
});

describe('write answers that do not match the request', () => {
  it('does not take a created user that names another address: transient, maybe applied, so the retry looks first', async () => {
    scim()
      .post('/scim/v2/Users')
      .reply(201, wireUser(11, { userName: 'someone.else@example.test' }));
    const err = await failure(client().createUser({ userName: 'new@example.test', displayName: 'New', active: true }));
    expect(err.failureClass).toBe('transient');
    expect(err.maybeApplied).toBe(true);
    expect(err.message).toMatch(/it names someone\.else@example\.test/);
  });

  it('does not take an update whose answer names another user or another state', async () => {
    scim()
      .patch('/scim/v2/Users/u12')
      .reply(200, wireUser(12, { active: true }));
    const err = await failure(client().updateUser('u12', { active: false }));
    expect(err.failureClass).toBe('transient');
    expect(err.message).toMatch(/active true/);
  });

  it('does not count a 200 carrying a SCIM error as a group change or a deletion', async () => {
    const error = { schemas: [SCIM_ERROR_SCHEMA], status: '500', detail: 'not saved' };
    scim().patch('/scim/v2/Groups/g1').reply(200, error).delete('/scim/v2/Groups/g2').reply(200, error);
    const patched = await failure(client().addGroupMembers('g1', ['u1']));
    expect(patched).toMatchObject({ failureClass: 'transient', maybeApplied: true });
    expect(patched.message).toMatch(/SCIM error: 500 {2}not saved|SCIM error: 500 not saved/);
    expect((await failure(client().deleteGroup('g2'))).failureClass).toBe('transient');
    // A 200 with the group, or with no body, is still a success.
    scim()
      .patch('/scim/v2/Groups/g3')
      .reply(200, { schemas: [SCIM_GROUP_SCHEMA], id: 'g3', displayName: 'G3' })
      .delete('/scim/v2/Groups/g4')
      .reply(200);
    await client().addGroupMembers('g3', ['u1']);
    await client().deleteGroup('g4');
  });
});

describe('never the dangerous call', () => {
  it('refuses a DELETE on a collection path before any byte leaves, on both APIs', async () => {
    const { refuseCollectionDelete, TeamViewerScimClient } = await import('../../src/teamviewer/scim-client.js');
    const { z } = await import('zod');
    for (const path of [
      '/users',
      '/users/',
      '/Users',
      '/Groups/',
      '/usergroups/%20',
      '/',
      '',
      '/users//members',
      '/users/.',
      '/users/%2e',
      '/Groups/..',
      '/users/#',
      '/usergroups/%2E%2E/members',
    ]) {
      expect(() => refuseCollectionDelete('DELETE', path), path).toThrow(/names no single object/);
    }
    for (const path of ['/Groups/g1', '/usergroups/42/members', '/userroles/abc']) expect(() => refuseCollectionDelete('DELETE', path)).not.toThrow();
    expect(() => refuseCollectionDelete('GET', '/users')).not.toThrow();

    // A server that would record any request: the refused call never reaches it.
    const { createServer } = await import('node:http');
    const seen: string[] = [];
    const server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      res.writeHead(204).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const client = new TeamViewerScimClient({ baseUrl: `http://127.0.0.1:${port}/scim/v2`, token: 'collection-delete-token-0123' });
    await expect(
      client.webApi({ method: 'DELETE', path: '/users', route: '/users' }, { ok: [204], schema: z.unknown(), what: 'nothing' }),
    ).rejects.toMatchObject({
      failureClass: 'invalid',
    });
    await expect(client.deleteGroup('')).rejects.toThrow(/names no single object/);
    expect(seen).toEqual([]);
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
});
