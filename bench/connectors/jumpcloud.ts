import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import pino from 'pino';
import { jumpcloudSourceConfigSchema } from '../../src/connectors/jumpcloud/config.js';
import { createJumpcloudSource } from '../../src/connectors/jumpcloud/source.js';
import { MemoryStateStore } from '../../src/store/memory-state.js';
import { measureRead, type ReadFigures } from './measure-read.js';

const KEY = 'bench-key';
const APP = '6a0000000000000000000a01';
const PAGE_SIZE = 100;

const userId = (n: number) => `5f${n.toString(16).padStart(22, '0')}`;
const groupId = (n: number) => `64${n.toString(16).padStart(22, '0')}`;
const indexOf = (id: string) => Number.parseInt(id.slice(2), 16);

/**
 * A fake JumpCloud API on 127.0.0.1 answering in JumpCloud's wire format. User n belongs to group
 * n mod groups; every group is bound to the application. Records are made per request, so the
 * fake itself holds no directory in memory.
 */
function fakeJumpcloud(users: number, groups: number) {
  let requests = 0;
  const edge = (id: string, type: string) => ({ to: { id, type, attributes: null }, attributes: null });
  const systemUser = (n: number) => ({
    _id: userId(n),
    email: `user${n}@example.test`,
    firstname: `First${n}`,
    lastname: `Last${n}`,
    displayname: `First${n} Last${n}`,
    suspended: n % 97 === 0,
    password_expired: false,
    state: 'ACTIVATED',
  });
  const slice = (total: number, url: URL, make: (n: number) => unknown) => {
    const skip = Number(url.searchParams.get('skip') ?? 0);
    const limit = Math.min(PAGE_SIZE, Number(url.searchParams.get('limit') ?? 10));
    const end = Math.min(total, skip + limit);
    return Array.from({ length: Math.max(0, end - skip) }, (_, i) => make(skip + i));
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    requests++;
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const send = (body: unknown, total?: number, status = 200) => {
      res.writeHead(status, { 'content-type': 'application/json', ...(total !== undefined ? { 'x-total-count': String(total) } : {}) });
      res.end(JSON.stringify(body));
    };
    if (req.headers['x-api-key'] !== KEY) return send({ message: 'Unauthorized' }, undefined, 401);
    const path = url.pathname.replace(/^\/api/, '');
    const oneUser = /^\/systemusers\/(\w+)$/.exec(path)?.[1];
    const oneGroup = /^\/v2\/usergroups\/(\w+)$/.exec(path)?.[1];
    const members = /^\/v2\/usergroups\/(\w+)\/members$/.exec(path)?.[1];
    if (path === '/systemusers') return send({ totalCount: users, results: slice(users, url, systemUser) });
    if (oneUser) return send(systemUser(indexOf(oneUser)));
    if (path === `/v2/applications/${APP}/usergroups`) {
      const bound = (g: number) => ({ id: groupId(g), type: 'user_group', compiledAttributes: {}, paths: [[edge(groupId(g), 'user_group')]] });
      return send(slice(groups, url, bound), groups);
    }
    if (path === `/v2/applications/${APP}/users`) {
      const viaGroup = (n: number) => [edge(groupId(n % groups), 'user_group'), edge(userId(n), 'user')];
      return send(
        slice(users, url, (n) => ({ id: userId(n), type: 'user', compiledAttributes: {}, paths: [viaGroup(n)] })),
        users,
      );
    }
    if (path === '/v2/usergroups')
      return send(
        slice(groups, url, (g) => ({ id: groupId(g), name: `Group ${g}` })),
        groups,
      );
    if (oneGroup) return send({ id: oneGroup, name: `Group ${indexOf(oneGroup)}` });
    if (members) {
      const g = indexOf(members);
      const size = Math.ceil((users - g) / groups);
      return send(
        slice(size, url, (i) => edge(userId(g + i * groups), 'user')),
        size,
      );
    }
    return send({ message: 'Not Found' }, undefined, 404);
  });
  return { server, requests: () => requests };
}

/** A full read() of a large fake directory: wall time, peak RSS (this process, fake included) and requests. */
export function benchJumpcloudRead(opts: { users?: number; groups?: number } = {}): Promise<ReadFigures> {
  const users = opts.users ?? 100_000;
  const groups = opts.groups ?? 1_000;
  return measureRead({
    connector: 'jumpcloud',
    pageSize: PAGE_SIZE,
    fake: fakeJumpcloud(users, groups),
    expect: { users, groups },
    source: (origin) =>
      createJumpcloudSource(
        jumpcloudSourceConfigSchema.parse({ type: 'jumpcloud', apiKey: KEY, baseUrl: `${origin}/api`, scope: { mode: 'application', applicationId: APP } }),
        {
          state: new MemoryStateStore(),
          log: pino({ level: 'silent' }),
        },
      ),
  });
}
