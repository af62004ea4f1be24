import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import {
  SCIM_ERROR_SCHEMA,
  SCIM_GROUP_SCHEMA,
  SCIM_LIST_SCHEMA,
  SCIM_PATCH_SCHEMA,
  SCIM_USER_SCHEMA,
  SSO_USER_SCHEMA,
} from '../model/teamviewer.js';
import {
  EmulatorStore,
  ScimError,
  emulatorStateSchema,
  type EmulatorState,
  type EmulatorStateInput,
  type EmulatorUser,
  type GroupChange,
  type StoredGroup,
} from './store.js';

export {
  emulatorStateSchema,
  type EmulatorGroupRecord,
  type EmulatorState,
  type EmulatorStateInput,
  type EmulatorUser,
} from './store.js';

export interface EmulatorOptions {
  /** Accepted bearer tokens; anything else is answered 401. */
  tokens: string[];
  /** The token owner: a company user from the start, returned by GET /api/v1/account. */
  owner?: { email: string; name: string };
  /** Addresses owned by TeamViewer accounts outside the company (case-insensitive). */
  outsideEmails?: string[];
  latencyMs?: number;
  /** More than `max` requests in a fixed window of `windowMs` are answered 429. */
  rateLimit?: { max: number; windowMs: number };
  /** Share (0..1) of SCIM requests answered with an injected 500, 502 or 503. */
  failureRate?: number;
  /** 'after': a write is applied and then answered 5xx. Default 'mixed'. */
  failureMode?: 'before' | 'after' | 'mixed';
  seed?: number;
  /** false: every /Groups request answers 404, like a tenant without group support. Default true. */
  groups?: boolean;
  pageSizeMax?: number;
}

export type EmulatorSwitches = Partial<Omit<EmulatorOptions, 'tokens'>>;

export interface EmulatorStats {
  requests: number;
  /** Requests per route, keyed like "POST /Users" (method and resource, without the id). */
  byRoute: Record<string, number>;
  writes: number;
  injectedFailures: number;
  rateLimited: number;
  /** GET /Users and /Groups with a filter: the look-ups a client makes before or after a write. */
  filteredReads: number;
}

export interface EmulatorAddress {
  baseUrl: string;
  webApiBaseUrl: string;
  port: number;
}

/** null switches a setting off, since JSON has no undefined. */
export const emulatorSwitchesSchema = z
  .object({
    owner: z.object({ email: z.string().min(1), name: z.string().min(1) }).nullable().optional(),
    outsideEmails: z.array(z.string()).optional(),
    latencyMs: z.number().int().nonnegative().nullable().optional(),
    rateLimit: z
      .object({ max: z.number().int().nonnegative(), windowMs: z.number().int().positive() })
      .nullable()
      .optional(),
    failureRate: z.number().min(0).max(1).nullable().optional(),
    failureMode: z.enum(['before', 'after', 'mixed']).nullable().optional(),
    seed: z.number().int().nullable().optional(),
    groups: z.boolean().nullable().optional(),
    pageSizeMax: z.number().int().positive().nullable().optional(),
  })
  .strict();

type SwitchesPatch = z.infer<typeof emulatorSwitchesSchema>;

const SCIM_PREFIX = '/scim/v2';
const WEB_API_PREFIX = '/api/v1';
const ADMIN_PREFIX = '/_emulator';
const SCIM_CONTENT_TYPE = 'application/scim+json; charset=utf-8';
const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';
const MAX_BODY_BYTES = 5 * 1024 * 1024;
const DEFAULT_SEED = 1;
const INJECTED_STATUSES = [500, 502, 503] as const;
/** TeamViewer's doc example uses this URN in place of the RFC one; both are accepted. */
const DOC_PATCH_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:PatchOp';
const USER_ROUTES = ['GET /Users', 'POST /Users', 'PUT /Users', 'PATCH /Users', 'DELETE /Users'];
const GROUP_ROUTES = ['GET /Groups', 'POST /Groups', 'PATCH /Groups', 'DELETE /Groups'];
const KNOWN_ROUTES = [...USER_ROUTES, ...GROUP_ROUTES, 'GET /account'];
/** Stats keep one counter per method on these; anything else is counted as "<METHOD> /other". */
const COUNTED_RESOURCES = { scim: new Set(['Users', 'Groups']), web: new Set(['account']) };

interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

const nameSchema = z.object({
  formatted: z.string().optional(),
  givenName: z.string().optional(),
  familyName: z.string().optional(),
});
const emailsSchema = z.array(z.object({ value: z.string(), primary: z.boolean().optional() }));
const userBodySchema = z.object({
  schemas: z.array(z.string()),
  userName: z.string().optional(),
  displayName: z.string().optional(),
  name: nameSchema.optional(),
  emails: emailsSchema.optional(),
  active: z.boolean().optional(),
  password: z.string().optional(),
  preferredLanguage: z.string().optional(),
  [SSO_USER_SCHEMA]: z.object({ ssoCustomerId: z.string().optional() }).optional(),
});
type UserBody = z.infer<typeof userBodySchema>;

const memberRefsSchema = z.array(z.object({ value: z.string().min(1) }));
const groupBodySchema = z.object({
  schemas: z.array(z.string()),
  displayName: z.string(),
  members: memberRefsSchema.optional(),
});
const patchBodySchema = z.object({
  schemas: z.array(z.string()),
  Operations: z
    .array(z.object({ op: z.string(), path: z.string().optional(), value: z.unknown().optional() }))
    .min(1),
});
type PatchOperation = z.infer<typeof patchBodySchema>['Operations'][number];
const attributeObjectSchema = z.record(z.string(), z.unknown());

/** Small seeded PRNG (mulberry32): reproducible failure injection without a dependency. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

class FixedWindowLimiter {
  private windowStart = 0;
  private used = 0;

  constructor(private readonly limit: { max: number; windowMs: number }) {}

  /** undefined when the request may pass, else the milliseconds until the window ends. */
  take(now: number): number | undefined {
    if (now - this.windowStart >= this.limit.windowMs) {
      this.windowStart = now;
      this.used = 0;
    }
    if (this.used >= this.limit.max) return this.windowStart + this.limit.windowMs - now;
    this.used++;
    return undefined;
  }
}

/**
 * A local stand-in for TeamViewer's SCIM v2 API (Users as documented, Groups as Entra and Okta use
 * them) and the one Web API call tvsync needs, with switches for latency, rate limiting and
 * injected failures.
 */
export class TeamViewerEmulator {
  private readonly tokens: ReadonlySet<string>;
  private store = new EmulatorStore();
  private owner: { email: string; name: string } | undefined;
  /** null and undefined both mean "off"; readers apply the defaults. */
  private switches: Omit<SwitchesPatch, 'owner' | 'outsideEmails'> = {};
  private random: () => number = seededRandom(DEFAULT_SEED);
  private limiter: FixedWindowLimiter | undefined;
  private counters: EmulatorStats = freshStats();
  private server: Server | undefined;

  constructor(opts: EmulatorOptions) {
    this.tokens = new Set(opts.tokens);
    const { tokens: _tokens, ...switches } = opts;
    this.configure(switches);
  }

  async start(port = 0, host = '127.0.0.1'): Promise<EmulatorAddress> {
    if (this.server) throw new Error('emulator already started');
    const server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        const detail = err instanceof Error ? err.message : String(err);
        if (!res.headersSent) send(res, scimErrorReply(new ScimError(500, detail)), SCIM_CONTENT_TYPE);
        else res.destroy();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    const bound = (server.address() as AddressInfo).port;
    const origin = `http://${urlHost(host)}:${bound}`;
    return { baseUrl: origin + SCIM_PREFIX, webApiBaseUrl: origin + WEB_API_PREFIX, port: bound };
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await new Promise<void>((resolve, reject) => {
      server.close((err) => (err ? reject(err) : resolve()));
      server.closeAllConnections();
    });
  }

  /** Changes switches at run time; a key present with undefined (or null) switches that setting off. */
  /** `null` turns a switch off, as on the admin route. */
  configure(patch: z.input<typeof emulatorSwitchesSchema>): void {
    this.applySwitches(emulatorSwitchesSchema.parse(patch));
  }

  private applySwitches(patch: SwitchesPatch): void {
    const { owner, outsideEmails, ...switches } = patch;
    this.switches = { ...this.switches, ...switches };
    if ('seed' in patch) this.random = seededRandom(patch.seed ?? DEFAULT_SEED);
    if ('rateLimit' in patch) this.limiter = patch.rateLimit ? new FixedWindowLimiter(patch.rateLimit) : undefined;
    if (outsideEmails) this.store.setOutsideEmails(outsideEmails);
    if ('owner' in patch) {
      this.owner = owner ?? undefined;
      this.ensureOwner();
    }
  }

  dump(): EmulatorState {
    return this.store.dump();
  }

  /**
   * Replaces users, groups and outside addresses (kept when the state has none); the owner is
   * added back when the state lacks it.
   */
  load(state: EmulatorStateInput): void {
    this.store = EmulatorStore.fromState({ outsideEmails: this.store.outsideEmailList, ...state });
    this.ensureOwner();
  }

  get stats(): EmulatorStats {
    return { ...this.counters, byRoute: { ...this.counters.byRoute } };
  }

  resetStats(): void {
    this.counters = freshStats();
  }

  private ensureOwner(): void {
    if (this.owner) this.store.ensureUser(this.owner.email, this.owner.name);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://emulator.invalid');
    const path = url.pathname.length > 1 ? url.pathname.replace(/\/+$/, '') : url.pathname;

    if (path.startsWith(ADMIN_PREFIX + '/')) {
      send(res, await this.admin(req, method, path.slice(ADMIN_PREFIX.length)), JSON_CONTENT_TYPE);
      return;
    }
    const surface = path.startsWith(SCIM_PREFIX + '/')
      ? 'scim'
      : path.startsWith(WEB_API_PREFIX + '/')
        ? 'web'
        : undefined;
    if (!surface) {
      send(res, webError(404, 'not_found', `No route ${path}`), JSON_CONTENT_TYPE);
      return;
    }
    const segments = path.slice((surface === 'scim' ? SCIM_PREFIX : WEB_API_PREFIX).length + 1).split('/');
    const resource = segments[0] ?? '';
    this.counters.requests++;
    const counted = `${method} /${COUNTED_RESOURCES[surface].has(resource) ? resource : 'other'}`;
    this.counters.byRoute[counted] = (this.counters.byRoute[counted] ?? 0) + 1;

    if (this.switches.latencyMs) await sleep(this.switches.latencyMs);

    if (!this.authorised(req.headers.authorization)) {
      const reply = webError(401, 'invalid_token', 'The access token is missing or not valid');
      send(res, { ...reply, headers: { 'WWW-Authenticate': 'Bearer' } }, JSON_CONTENT_TYPE);
      return;
    }
    const waitMs = this.limiter?.take(Date.now());
    if (waitMs !== undefined) {
      this.counters.rateLimited++;
      const seconds = Math.max(1, Math.ceil(waitMs / 1000));
      const reply = webError(429, 'rate_limit_reached', `Rate limit reached; retry in ${seconds} s`);
      send(res, { ...reply, headers: { 'Retry-After': String(seconds) } }, JSON_CONTENT_TYPE);
      return;
    }

    if (surface === 'web') {
      send(res, this.webApi(method, segments), JSON_CONTENT_TYPE);
      return;
    }
    if (resource === 'Groups' && this.switches.groups === false) {
      send(res, scimErrorReply(new ScimError(404, 'Groups are not available for this company')), SCIM_CONTENT_TYPE);
      return;
    }
    const failure = this.drawFailure();
    if (failure?.before) {
      send(res, failure.reply, SCIM_CONTENT_TYPE);
      return;
    }
    let reply: Reply;
    try {
      reply = await this.scim(req, method, resource, segments.slice(1), url.searchParams);
    } catch (err) {
      if (!(err instanceof ScimError)) throw err;
      reply = scimErrorReply(err);
    }
    send(res, failure ? failure.reply : reply, SCIM_CONTENT_TYPE);
  }

  private authorised(header: string | undefined): boolean {
    const token = header === undefined ? undefined : /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
    return token !== undefined && this.tokens.has(token);
  }

  private drawFailure(): { before: boolean; reply: Reply } | undefined {
    const rate = this.switches.failureRate ?? 0;
    if (rate <= 0 || this.random() >= rate) return undefined;
    this.counters.injectedFailures++;
    const status = INJECTED_STATUSES[Math.floor(this.random() * INJECTED_STATUSES.length)] ?? 500;
    const mode = this.switches.failureMode ?? 'mixed';
    const before = mode === 'before' || (mode === 'mixed' && this.random() < 0.5);
    return { before, reply: scimErrorReply(new ScimError(status, `Injected failure (${status})`)) };
  }

  private webApi(method: string, segments: string[]): Reply {
    if (method !== 'GET' || segments.length !== 1 || segments[0] !== 'account') {
      return webError(404, 'not_found', 'No such Web API route');
    }
    const user = this.owner && this.store.userByEmail(this.owner.email);
    if (!user) return webError(404, 'not_found', 'No token owner is configured');
    return { status: 200, body: { userid: user.id, email: user.userName, name: user.displayName } };
  }

  private async scim(
    req: IncomingMessage,
    method: string,
    resource: string,
    rest: string[],
    query: URLSearchParams,
  ): Promise<Reply> {
    if (rest.length > 1 || (resource !== 'Users' && resource !== 'Groups')) {
      throw new ScimError(404, `No SCIM resource at /${[resource, ...rest].join('/')}`);
    }
    const id = rest[0] === undefined ? undefined : decodeId(rest[0]);
    if (resource === 'Users') return id === undefined ? this.users(req, method, query) : this.oneUser(req, method, id);
    return id === undefined ? this.groups(req, method, query) : this.oneGroup(req, method, id, query);
  }

  private async users(req: IncomingMessage, method: string, query: URLSearchParams): Promise<Reply> {
    if (method === 'GET') {
      if (query.has('filter')) this.counters.filteredReads++;
      return listReply(this.filterUsers(query.get('filter')), query, this.switches.pageSizeMax, renderUser);
    }
    if (method !== 'POST') throw new MethodNotAllowed('GET, POST');
    const body = parseBody(userBodySchema, await readJsonBody(req));
    requireSchema(body.schemas, SCIM_USER_SCHEMA);
    const userName = requiredEmail(body);
    const displayName = requiredName(body);
    const ssoCustomerId = body[SSO_USER_SCHEMA]?.ssoCustomerId;
    const user = this.store.createUser({
      userName,
      displayName,
      active: body.active ?? true,
      ...(body.preferredLanguage !== undefined && { preferredLanguage: body.preferredLanguage }),
      ...(ssoCustomerId !== undefined && { ssoCustomerId }),
      ...(body.password !== undefined && { password: body.password }),
    });
    this.counters.writes++;
    return { status: 201, body: renderUser(user) };
  }

  private async oneUser(req: IncomingMessage, method: string, id: string): Promise<Reply> {
    if (method === 'DELETE') {
      throw new MethodNotAllowed('GET, PUT, PATCH', "Users can't be deleted; deactivate them (active: false)");
    }
    const user = this.store.user(id);
    if (!user) throw new ScimError(404, `User ${id} not found`);
    if (method === 'GET') return { status: 200, body: renderUser(user) };
    if (method === 'PUT') {
      const body = parseBody(userBodySchema, await readJsonBody(req));
      requireSchema(body.schemas, SCIM_USER_SCHEMA);
      if (body.userName !== undefined) assertUnchanged('userName', body.userName, user);
      const address = body.emails === undefined ? undefined : primaryEmail(body.emails);
      if (address !== undefined) assertUnchanged('emails', address, user);
      const displayName = requiredName(body);
      // A full replace: an omitted active takes its create default.
      return this.userWritten(this.store.updateUser(id, { displayName, active: body.active ?? true }));
    }
    if (method === 'PATCH') {
      const body = parseBody(patchBodySchema, await readJsonBody(req));
      requirePatchSchema(body.schemas);
      return this.userWritten(this.store.updateUser(id, patchedUser(user, body.Operations)));
    }
    throw new MethodNotAllowed('GET, PUT, PATCH');
  }

  private userWritten(user: Readonly<EmulatorUser>): Reply {
    this.counters.writes++;
    return { status: 200, body: renderUser(user) };
  }

  private filterUsers(filterText: string | null): readonly Readonly<EmulatorUser>[] {
    if (filterText === null) return this.store.userList;
    const filter = parseFilter(filterText, USER_FILTER_ATTRIBUTES);
    const byEmail = filter.attribute === 'username' || filter.attribute === 'emails.value';
    const read = (user: Readonly<EmulatorUser>): string => (byEmail ? user.userName : user.displayName);
    if (filter.op === 'eq' && byEmail) {
      const candidate = this.store.userByEmail(filter.value);
      return candidate && candidate.userName === filter.value ? [candidate] : [];
    }
    return this.store.userList.filter((user) => compare(filter.op, read(user), filter.value));
  }

  private async groups(req: IncomingMessage, method: string, query: URLSearchParams): Promise<Reply> {
    if (method === 'GET') {
      const render = groupRenderer(query);
      if (query.has('filter')) this.counters.filteredReads++;
      return listReply(this.filterGroups(query.get('filter')), query, this.switches.pageSizeMax, render);
    }
    if (method !== 'POST') throw new MethodNotAllowed('GET, POST');
    const body = parseBody(groupBodySchema, await readJsonBody(req));
    requireSchema(body.schemas, SCIM_GROUP_SCHEMA);
    const group = this.store.createGroup(requireText('displayName', body.displayName), memberIds(body.members ?? []));
    this.counters.writes++;
    return { status: 201, body: renderGroup(group, true) };
  }

  private async oneGroup(req: IncomingMessage, method: string, id: string, query: URLSearchParams): Promise<Reply> {
    if (method === 'DELETE') {
      if (!this.store.deleteGroup(id)) throw new ScimError(404, `Group ${id} not found`);
      this.counters.writes++;
      return { status: 204 };
    }
    const group = this.store.group(id);
    if (!group) throw new ScimError(404, `Group ${id} not found`);
    if (method === 'GET') return { status: 200, body: groupRenderer(query)(group) };
    if (method !== 'PATCH') throw new MethodNotAllowed('GET, PATCH, DELETE');
    const body = parseBody(patchBodySchema, await readJsonBody(req));
    requirePatchSchema(body.schemas);
    this.store.changeGroup(id, body.Operations.flatMap((operation) => groupChanges(operation, id)));
    this.counters.writes++;
    // Like Entra's reference service: a group PATCH answers 204, so big groups are not echoed back.
    return { status: 204 };
  }

  private filterGroups(filterText: string | null): readonly StoredGroup[] {
    if (filterText === null) return this.store.groupList;
    const filter = parseFilter(filterText, GROUP_FILTER_ATTRIBUTES);
    if (filter.op === 'eq') {
      const candidate = this.store.groupByName(filter.value);
      return candidate && candidate.displayName === filter.value ? [candidate] : [];
    }
    return this.store.groupList.filter((group) => compare(filter.op, group.displayName, filter.value));
  }

  private async admin(req: IncomingMessage, method: string, route: string): Promise<Reply> {
    const call = `${method} ${route}`;
    if (call === 'GET /state') return { status: 200, body: this.dump() };
    if (call === 'GET /stats') return { status: 200, body: this.stats };
    if (call === 'POST /reset-stats') {
      this.resetStats();
      return { status: 204 };
    }
    if (call === 'POST /config') {
      try {
        const patch = emulatorSwitchesSchema.safeParse(await readJsonBody(req));
        if (!patch.success) return webError(400, 'invalid_request', z.prettifyError(patch.error));
        this.applySwitches(patch.data);
      } catch (err) {
        if (err instanceof ScimError) return webError(err.status, 'invalid_request', err.message);
        throw err;
      }
      return { status: 204 };
    }
    return webError(404, 'not_found', `No admin route ${call}`);
  }
}

/**
 * Starts an emulator for the CLI: optional state file in, address printed, and on SIGINT or
 * SIGTERM it stops and writes its state out when asked to.
 */
export async function runEmulator(
  opts: EmulatorOptions & { port: number; host: string; stateFile?: string; dumpOnExit?: string },
  log: (line: string) => void,
): Promise<TeamViewerEmulator> {
  const { port, host, stateFile, dumpOnExit, ...options } = opts;
  const emulator = new TeamViewerEmulator(options);
  if (stateFile !== undefined) {
    emulator.load(emulatorStateSchema.parse(JSON.parse(await readFile(stateFile, 'utf8'))));
    log(`loaded state from ${stateFile}`);
  }
  const address = await emulator.start(port, host);
  log(`TeamViewer emulator listening: SCIM ${address.baseUrl}, Web API ${address.webApiBaseUrl}`);
  const shutdown = (signal: NodeJS.Signals): void => {
    process.off('SIGINT', shutdown);
    process.off('SIGTERM', shutdown);
    log(`${signal}: stopping the emulator`);
    void (async () => {
      await emulator.stop();
      if (dumpOnExit !== undefined) {
        await writeFile(dumpOnExit, JSON.stringify(emulator.dump(), null, 2) + '\n');
        log(`state written to ${dumpOnExit}`);
      }
    })().catch((err: unknown) => log(`shutdown failed: ${err instanceof Error ? err.message : String(err)}`));
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
  return emulator;
}


class MethodNotAllowed extends ScimError {
  readonly allow: string;

  constructor(allow: string, detail = `Method not allowed; allowed: ${allow}`) {
    super(405, detail);
    this.allow = allow;
  }
}

function freshStats(): EmulatorStats {
  const byRoute = Object.fromEntries(KNOWN_ROUTES.map((route) => [route, 0]));
  return { requests: 0, byRoute, writes: 0, injectedFailures: 0, rateLimited: 0, filteredReads: 0 };
}

function urlHost(host: string): string {
  if (host === '' || host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

function send(res: ServerResponse, reply: Reply, contentType: string): void {
  if (reply.body === undefined) {
    res.writeHead(reply.status, reply.headers);
    res.end();
    return;
  }
  const text = JSON.stringify(reply.body);
  res.writeHead(reply.status, {
    ...reply.headers,
    'Content-Type': contentType,
    'Content-Length': String(Buffer.byteLength(text)),
  });
  res.end(text);
}

function scimErrorReply(err: ScimError): Reply {
  return {
    status: err.status,
    body: {
      schemas: [SCIM_ERROR_SCHEMA],
      status: String(err.status),
      ...(err.scimType !== undefined && { scimType: err.scimType }),
      detail: err.message,
    },
    ...(err instanceof MethodNotAllowed && { headers: { Allow: err.allow } }),
  };
}

/** The Web API's error body, also what TeamViewer answers for bad tokens and throttling. */
function webError(status: number, error: string, description: string): Reply {
  return { status, body: { error, error_description: description, error_code: status } };
}

async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const mediaType = req.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
  if (mediaType !== 'application/json' && mediaType !== 'application/scim+json') {
    throw new ScimError(415, 'Send the body as application/scim+json or application/json');
  }
  const tooLarge = new ScimError(413, `The body is larger than ${MAX_BODY_BYTES} bytes`);
  if (Number(req.headers['content-length']) > MAX_BODY_BYTES) throw tooLarge;
  const chunks: Buffer[] = [];
  let size = 0;
  // Keep draining past the limit so the connection stays usable for the 413.
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= MAX_BODY_BYTES) chunks.push(chunk);
  }
  if (size > MAX_BODY_BYTES) throw tooLarge;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new ScimError(400, 'The body is not valid JSON', 'invalidSyntax');
  }
}

function parseBody<T>(schema: z.ZodType<T>, input: unknown): T {
  const result = schema.safeParse(input);
  if (!result.success) throw new ScimError(400, `Malformed body: ${z.prettifyError(result.error)}`, 'invalidSyntax');
  return result.data;
}

function parseValue<T>(schema: z.ZodType<T>, input: unknown, path: string): T {
  const result = schema.safeParse(input);
  if (!result.success) throw invalidValue(`Bad value for ${path}: ${z.prettifyError(result.error)}`);
  return result.data;
}

function decodeId(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new ScimError(404, `No resource ${segment}`);
  }
}

const sameUrn = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();

function requireSchema(schemas: readonly string[], urn: string): void {
  if (!schemas.some((schema) => sameUrn(schema, urn))) {
    throw new ScimError(400, `schemas must contain ${urn}`, 'invalidSyntax');
  }
}

function requirePatchSchema(schemas: readonly string[]): void {
  if (!schemas.some((schema) => sameUrn(schema, SCIM_PATCH_SCHEMA) || sameUrn(schema, DOC_PATCH_SCHEMA))) {
    throw new ScimError(400, `schemas must contain ${SCIM_PATCH_SCHEMA}`, 'invalidSyntax');
  }
}

const invalidValue = (detail: string): ScimError => new ScimError(400, detail, 'invalidValue');

const nonEmpty = (text: string | undefined): string | undefined => text?.trim() || undefined;

function requireText(attribute: string, value: unknown): string {
  const text = typeof value === 'string' ? nonEmpty(value) : undefined;
  if (text === undefined) throw invalidValue(`${attribute} must be a non-empty string`);
  return text;
}

/** The primary address, else the first one. */
function primaryEmail(emails: z.infer<typeof emailsSchema>): string | undefined {
  return nonEmpty((emails.find((email) => email.primary === true) ?? emails[0])?.value);
}

/** userName wins over emails, as TeamViewer documents. */
function requiredEmail(body: UserBody): string {
  const address = nonEmpty(body.userName) ?? (body.emails === undefined ? undefined : primaryEmail(body.emails));
  if (address === undefined) throw invalidValue('An e-mail address (userName or emails) is required');
  if (!/^[^\s@]+@[^\s@]+$/.test(address)) throw invalidValue(`"${address}" is not an e-mail address`);
  return address;
}

/** TeamViewer keeps one name: displayName, else name.formatted, else given and family name. */
function requiredName(body: UserBody): string {
  const parts = [body.name?.givenName, body.name?.familyName].map(nonEmpty).filter((part) => part !== undefined);
  const name = nonEmpty(body.displayName) ?? nonEmpty(body.name?.formatted) ?? nonEmpty(parts.join(' '));
  if (name === undefined) throw invalidValue('A name (displayName or name) is required');
  return name;
}

/** TeamViewer's split of its single name: at the first space; no space, no parts. */
function splitName(name: string): [given: string, family: string] | undefined {
  const space = name.indexOf(' ');
  return space < 0 ? undefined : [name.slice(0, space), name.slice(space + 1)];
}

/** A one-word name counts as a given name when only one part is replaced. */
function withNamePart(name: string, part: 0 | 1, value: string): string {
  const parts = splitName(name) ?? [name, ''];
  parts[part] = value;
  return parts.filter((text) => text !== '').join(' ');
}

function assertUnchanged(attribute: string, value: string, user: Readonly<EmulatorUser>): void {
  if (value.trim() !== user.userName) {
    const detail = `${attribute} can't be changed: a user keeps the e-mail address it was created with`;
    throw new ScimError(400, detail, 'mutability');
  }
}

/** Strips the resource's schema URN from a fully qualified attribute path. */
function attributePath(path: string, schemaUrn: string): string {
  const trimmed = path.trim();
  const prefix = schemaUrn + ':';
  return trimmed.toLowerCase().startsWith(prefix.toLowerCase()) ? trimmed.slice(prefix.length) : trimmed;
}

function attributeObject(value: unknown): Record<string, unknown> {
  return parseValue(attributeObjectSchema, value, 'an operation without path (needs an object value)');
}

function patchedUser(user: Readonly<EmulatorUser>, operations: readonly PatchOperation[]): UserDraft {
  const draft: UserDraft = { displayName: user.displayName, active: user.active };
  for (const operation of operations) {
    if (operation.op.toLowerCase() !== 'replace') {
      throw new ScimError(400, `Unsupported PATCH op "${operation.op}": only replace is supported`, 'invalidSyntax');
    }
    if (operation.path !== undefined) replaceUserAttribute(draft, user, operation.path, operation.value);
    else {
      for (const [key, value] of Object.entries(attributeObject(operation.value))) {
        replaceUserAttribute(draft, user, key, value);
      }
    }
  }
  return draft;
}

interface UserDraft {
  displayName: string;
  active: boolean;
}

function replaceUserAttribute(draft: UserDraft, user: Readonly<EmulatorUser>, path: string, value: unknown): void {
  const attribute = attributePath(path, SCIM_USER_SCHEMA).toLowerCase();
  const createOnly = new ScimError(400, `${path} can only be set when the user is created`, 'mutability');
  if (attribute.startsWith(SSO_USER_SCHEMA.toLowerCase())) throw createOnly;
  if (attribute === 'emails' || attribute.startsWith('emails.') || attribute.startsWith('emails[')) {
    assertUnchanged('emails', emailValue(value), user);
    return;
  }
  switch (attribute) {
    case 'displayname':
    case 'name.formatted':
      draft.displayName = requireText(path, value);
      return;
    case 'name.givenname':
      draft.displayName = withNamePart(draft.displayName, 0, requireText(path, value));
      return;
    case 'name.familyname':
      draft.displayName = withNamePart(draft.displayName, 1, requireText(path, value));
      return;
    case 'name':
      for (const [key, part] of Object.entries(attributeObject(value))) {
        replaceUserAttribute(draft, user, `name.${key}`, part);
      }
      return;
    case 'active':
      if (typeof value !== 'boolean') throw invalidValue('active must be a boolean');
      draft.active = value;
      return;
    case 'username':
      assertUnchanged('userName', requireText(path, value), user);
      return;
    case 'id':
      if (value !== user.id) throw new ScimError(400, 'id is read-only', 'mutability');
      return;
    case 'preferredlanguage':
    case 'password':
      throw createOnly;
    default:
      throw new ScimError(400, `Unknown or unsupported attribute "${path}"`, 'invalidPath');
  }
}

/** The address an emails operation asks for; '' when it asks for none, which is a change too. */
function emailValue(value: unknown): string {
  if (typeof value === 'string') return value;
  const emails = emailsSchema.safeParse(value);
  return (emails.success ? primaryEmail(emails.data) : undefined) ?? '';
}

function renderUser(user: Readonly<EmulatorUser>): unknown {
  const parts = splitName(user.displayName);
  return {
    schemas: [SCIM_USER_SCHEMA],
    id: user.id,
    userName: user.userName,
    displayName: user.displayName,
    name: { formatted: user.displayName, givenName: parts?.[0] ?? null, familyName: parts?.[1] ?? null },
    emails: [{ value: user.userName, primary: true }],
    active: user.active,
  };
}

function renderGroup(group: StoredGroup, withMembers: boolean): unknown {
  return {
    schemas: [SCIM_GROUP_SCHEMA],
    id: group.id,
    displayName: group.displayName,
    ...(withMembers && { members: Array.from(group.members, (value) => ({ value })) }),
  };
}

function groupRenderer(query: URLSearchParams): (group: StoredGroup) => unknown {
  const excluded = (query.get('excludedAttributes') ?? '').split(',').map((name) => name.trim().toLowerCase());
  const withMembers = !excluded.includes('members');
  return (group) => renderGroup(group, withMembers);
}

function integerParam(query: URLSearchParams, name: string): number | undefined {
  const raw = query.get(name);
  if (raw === null) return undefined;
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(value)) throw invalidValue(`${name} must be an integer`);
  return value;
}

function listReply<T>(
  items: readonly T[],
  query: URLSearchParams,
  pageSizeMax: number | null | undefined,
  render: (item: T) => unknown,
): Reply {
  const start = Math.max(1, integerParam(query, 'startIndex') ?? 1) - 1;
  const asked = integerParam(query, 'count');
  const count = Math.min(asked === undefined ? items.length : Math.max(0, asked), pageSizeMax ?? Infinity);
  const page = items.slice(start, start + count);
  return {
    status: 200,
    body: {
      schemas: [SCIM_LIST_SCHEMA],
      totalResults: items.length,
      // TeamViewer's documented example echoes 0 here whatever was asked; clients must not rely on it.
      startIndex: 0,
      itemsPerPage: page.length,
      Resources: page.map(render),
    },
  };
}

const FILTER_OPS = ['eq', 'ne', 'co', 'sw', 'ew'] as const;
type FilterOp = (typeof FILTER_OPS)[number];
const QUOTED = String.raw`"((?:[^"\\]|\\.)*)"`;
const FILTER_PATTERN = new RegExp(String.raw`^\s*([A-Za-z][\w.]*)\s+(\w+)\s+${QUOTED}\s*$`);
const MEMBER_PATH_PATTERN = new RegExp(String.raw`^members\s*\[\s*value\s+eq\s+${QUOTED}\s*\]$`, 'i');
/** `name` filters like displayName: TeamViewer keeps a single name. */
const USER_FILTER_ATTRIBUTES: ReadonlySet<string> = new Set(['username', 'emails.value', 'displayname', 'name']);
const GROUP_FILTER_ATTRIBUTES: ReadonlySet<string> = new Set(['displayname']);

interface Filter {
  attribute: string;
  op: FilterOp;
  value: string;
}

const unquote = (escaped: string): string => escaped.replace(/\\(.)/g, '$1');

function parseFilter(text: string, attributes: ReadonlySet<string>): Filter {
  const match = FILTER_PATTERN.exec(text);
  const attribute = match?.[1]?.toLowerCase();
  const op = FILTER_OPS.find((known) => known === match?.[2]?.toLowerCase());
  const value = match?.[3];
  if (attribute === undefined || !attributes.has(attribute) || op === undefined || value === undefined) {
    throw new ScimError(400, `Unsupported filter: ${text}`, 'invalidFilter');
  }
  return { attribute, op, value: unquote(value) };
}

/** Case-sensitive, as TeamViewer documents for its filters. */
function compare(op: FilterOp, actual: string, expected: string): boolean {
  switch (op) {
    case 'eq':
      return actual === expected;
    case 'ne':
      return actual !== expected;
    case 'co':
      return actual.includes(expected);
    case 'sw':
      return actual.startsWith(expected);
    case 'ew':
      return actual.endsWith(expected);
  }
}

const memberIds = (refs: z.infer<typeof memberRefsSchema>): string[] => refs.map((ref) => ref.value);

function groupChanges(operation: PatchOperation, groupId: string): GroupChange[] {
  const op = operation.op.toLowerCase();
  if (op === 'remove') return [groupRemoval(operation.path, operation.value)];
  if (op !== 'add' && op !== 'replace') {
    throw new ScimError(400, `Unsupported PATCH op "${operation.op}"`, 'invalidSyntax');
  }
  if (operation.path !== undefined) return groupAssignment(op, operation.path, operation.value, groupId);
  return Object.entries(attributeObject(operation.value)).flatMap(([key, value]) =>
    groupAssignment(op, key, value, groupId),
  );
}

function groupAssignment(op: 'add' | 'replace', path: string, value: unknown, groupId: string): GroupChange[] {
  switch (attributePath(path, SCIM_GROUP_SCHEMA).toLowerCase()) {
    case 'displayname':
      return [{ kind: 'rename', displayName: requireText(path, value) }];
    case 'members':
      return [{ kind: op === 'add' ? 'add' : 'set', memberIds: memberIds(parseValue(memberRefsSchema, value, path)) }];
    case 'id':
      // Okta repeats the group id in its rename PATCH.
      if (value !== groupId) throw new ScimError(400, 'id is read-only', 'mutability');
      return [];
    default:
      throw new ScimError(400, `Unknown or unsupported attribute "${path}"`, 'invalidPath');
  }
}

function groupRemoval(path: string | undefined, value: unknown): GroupChange {
  if (path === undefined) throw new ScimError(400, 'A remove operation needs a path', 'noTarget');
  const attribute = attributePath(path, SCIM_GROUP_SCHEMA);
  const single = MEMBER_PATH_PATTERN.exec(attribute)?.[1];
  if (single !== undefined) return { kind: 'remove', memberIds: [unquote(single)] };
  if (attribute.toLowerCase() !== 'members') throw new ScimError(400, `Can't remove "${path}"`, 'invalidPath');
  // Without a value, RFC 7644 removes every member.
  if (value === undefined) return { kind: 'set', memberIds: [] };
  return { kind: 'remove', memberIds: memberIds(parseValue(memberRefsSchema, value, path)) };
}
