import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { oktaSourceConfigSchema } from '../../src/connectors/okta/config.js';
import { createOktaSource } from '../../src/connectors/okta/source.js';
import { MemoryStateStore } from '../../src/store/memory-state.js';
import { measureRead, type ReadFigures } from './measure-read.js';

const APP_ID = '0oabenchapp0000001';
const PAGE_SIZE = 200;

const userId = (i: number): string => `00u${String(i).padStart(17, '0')}`;
const groupId = (g: number): string => `00g${String(g).padStart(17, '0')}`;

function user(i: number) {
  const id = userId(i);
  return {
    id,
    status: i % 50 === 0 ? 'SUSPENDED' : 'ACTIVE',
    created: '2026-01-05T09:00:00.000Z',
    activated: '2026-01-05T09:00:01.000Z',
    statusChanged: '2026-01-05T09:00:01.000Z',
    lastLogin: '2026-10-30T07:12:44.000Z',
    lastUpdated: '2026-10-01T10:00:00.000Z',
    passwordChanged: '2026-01-05T09:10:00.000Z',
    type: { id: 'oty1defaulttype0001' },
    profile: {
      firstName: `First${i}`,
      lastName: `Last${i}`,
      mobilePhone: null,
      secondEmail: null,
      login: `user${i}@bench.example.com`,
      email: `user${i}@bench.example.com`,
      displayName: null,
      preferredLanguage: i % 3 === 0 ? 'de' : null,
    },
    credentials: { provider: { type: 'OKTA', name: 'OKTA' } },
    _links: { self: { href: `https://bench.okta.test/api/v1/users/${id}` } },
  };
}

function group(g: number) {
  return {
    id: groupId(g),
    created: '2026-01-01T00:00:00.000Z',
    lastUpdated: '2026-01-01T00:00:00.000Z',
    lastMembershipUpdated: '2026-09-01T00:00:00.000Z',
    objectClass: ['okta:user_group'],
    type: 'OKTA_GROUP',
    profile: { name: `Bench group ${g}`, description: null },
  };
}

/**
 * A fake Okta org: every user is assigned to the app directly, every group is assigned, and user i
 * is a member of group i mod groups. Records are built per page so the fake holds no directory.
 */
function fakeOkta(users: number, groups: number) {
  let requests = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    requests++;
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const limit = Number(url.searchParams.get('limit') ?? PAGE_SIZE);
    const after = Number(url.searchParams.get('after') ?? 0);
    let total = 0;
    let record: (n: number) => unknown = () => ({});
    const groupMembers = /^\/api\/v1\/groups\/00g(\d+)\/users$/.exec(url.pathname);
    if (url.pathname === `/api/v1/apps/${APP_ID}/users`) {
      total = users;
      record = (i) => ({
        id: userId(i),
        scope: 'USER',
        status: 'PROVISIONED',
        credentials: { userName: `user${i}@bench.example.com` },
        _embedded: { user: user(i) },
      });
    } else if (url.pathname === `/api/v1/apps/${APP_ID}/groups`) {
      total = groups;
      record = (g) => ({ id: groupId(g), priority: 0, profile: {}, _embedded: { group: group(g) } });
    } else if (groupMembers) {
      const g = Number(groupMembers[1]);
      total = Math.max(0, Math.ceil((users - g) / groups));
      record = (k) => user(g + k * groups);
    } else {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ errorCode: 'E0000007', errorSummary: 'Not found' }));
      return;
    }
    const end = Math.min(total, after + limit);
    const items: unknown[] = [];
    for (let n = after; n < end; n++) items.push(record(n));
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'x-rate-limit-limit': '100000',
      'x-rate-limit-remaining': '99999',
      'x-rate-limit-reset': String(Math.floor(Date.now() / 1000) + 60),
    };
    if (end < total) {
      const next = new URL(url);
      next.searchParams.set('after', String(end));
      headers.link = `<http://127.0.0.1:${(server.address() as AddressInfo).port}${next.pathname}${next.search}>; rel="next"`;
    }
    res.writeHead(200, headers).end(JSON.stringify(items));
  });
  return { server, requests: () => requests };
}

export function benchOktaRead(opts: { users?: number; groups?: number } = {}): Promise<ReadFigures> {
  const users = opts.users ?? 100_000;
  const groups = opts.groups ?? 1_000;
  return measureRead({
    connector: 'okta',
    pageSize: PAGE_SIZE,
    fake: fakeOkta(users, groups),
    expect: { users, groups },
    source: (origin) =>
      createOktaSource(
        oktaSourceConfigSchema.parse({
          type: 'okta',
          orgUrl: origin,
          auth: { method: 'apiToken', apiToken: 'bench-token' },
          scope: { mode: 'app', appId: APP_ID },
          pageSize: PAGE_SIZE,
        }),
        { state: new MemoryStateStore(), log: pino({ level: 'silent' }) },
      ),
  });
}
