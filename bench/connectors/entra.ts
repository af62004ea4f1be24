import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { entraSourceConfigSchema } from '../../src/connectors/entra/config.js';
import { createEntraSource } from '../../src/connectors/entra/source.js';
import { MemoryStateStore } from '../../src/store/memory-state.js';
import { measureRead, type ReadFigures } from './measure-read.js';

const PAGE_SIZE = 999;
const SERVICE_PRINCIPAL = 'sp-teamviewer';

const userId = (i: number) => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
const groupId = (k: number) => `00000000-0000-4000-9000-${k.toString(16).padStart(12, '0')}`;

function userRecord(i: number) {
  return {
    id: userId(i),
    userPrincipalName: `user${i}@contoso.test`,
    mail: `user${i}@contoso.test`,
    displayName: `User ${i}`,
    givenName: 'User',
    surname: String(i),
    accountEnabled: i % 50 !== 0,
    preferredLanguage: i % 3 === 0 ? 'de-DE' : 'en-US',
  };
}

/**
 * A fake Graph tenant: every group is assigned to the app; group 0 holds every user (a 100-page
 * listing at the defaults), the others split the users between them.
 */
function fakeGraph(users: number, groups: number) {
  let requests = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    requests++;
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    /** One page of `count` items made by `item`, with a nextLink while more remain. */
    const paged = (count: number, item: (n: number) => unknown) => {
      const top = Math.min(Number(url.searchParams.get('$top') ?? 100), PAGE_SIZE);
      const from = Number(url.searchParams.get('$skiptoken') ?? 0);
      const to = Math.min(count, from + top);
      const next = new URL(url.pathname + url.search, base);
      next.searchParams.set('$skiptoken', String(to));
      send(200, {
        value: Array.from({ length: to - from }, (_, n) => item(from + n)),
        ...(to < count ? { '@odata.nextLink': next.toString() } : {}),
      });
    };

    const path = url.pathname;
    if (path === '/v1.0/users/delta' || path === '/v1.0/groups/delta') {
      return send(200, { value: [], '@odata.deltaLink': `${base}${path}?$deltatoken=latest-1` });
    }
    if (path === `/v1.0/servicePrincipals/${SERVICE_PRINCIPAL}/appRoleAssignedTo`) {
      return paged(groups, (k) => ({ principalId: groupId(k), principalType: 'Group', principalDisplayName: `Group ${k}` }));
    }
    const members = /^\/v1\.0\/groups\/([^/]+)\/members\/microsoft\.graph\.user$/.exec(path);
    const k = members ? Number.parseInt(members[1]?.split('-').at(-1) ?? '', 16) : Number.NaN;
    if (Number.isInteger(k) && k >= 0 && k < groups) {
      if (k === 0 || groups === 1) return paged(users, userRecord);
      // Group k (1..groups-1) holds users i with i % (groups - 1) === k - 1.
      const stride = groups - 1;
      return paged(Math.ceil((users - (k - 1)) / stride), (j) => userRecord(k - 1 + j * stride));
    }
    send(404, { error: { code: 'Request_ResourceNotFound', message: `no ${path}` } });
  });
  return { server, requestCount: () => requests };
}

/** A full read of a fake 100,000-user, 1,000-group tenant over local HTTP, through the connector. */
export function benchEntraRead(opts: { users?: number; groups?: number } = {}): Promise<ReadFigures> {
  const users = opts.users ?? 100_000;
  const groups = opts.groups ?? 1_000;
  const { server, requestCount } = fakeGraph(users, groups);
  return measureRead({
    connector: 'entra',
    pageSize: PAGE_SIZE,
    fake: { server, requests: requestCount },
    expect: { users, groups },
    source: (origin) =>
      createEntraSource(
        entraSourceConfigSchema.parse({
          type: 'entra',
          tenantId: 'bench-tenant',
          clientId: 'bench-client',
          clientSecret: 'unused',
          graphBaseUrl: origin,
          scope: { mode: 'assignment', servicePrincipalId: SERVICE_PRINCIPAL },
        }),
        {
          state: new MemoryStateStore(),
          log: pino({ level: 'silent' }),
          credential: { getToken: async () => ({ token: 'bench-token', expiresOnTimestamp: Date.now() + 3_600_000 }) },
        },
      ),
  });
}
