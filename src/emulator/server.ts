import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { ScimError } from './errors.js';
import { FixedWindowLimiter, drawInjectedFailure, seededRandom } from './faults.js';
import { groupsResource } from './groups.js';
import {
  JSON_CONTENT_TYPE,
  SCIM_CONTENT_TYPE,
  decodeId,
  type DropWrites,
  readJsonBody,
  scimErrorReply,
  send,
  webError,
  type Reply,
  type ResourceContext,
} from './protocol.js';
import { EmulatorStore, type EmulatorState, type EmulatorStateInput } from './store.js';
import { usersResource } from './users.js';
import { WEB_API_ROUTES } from './web-api/index.js';
import type { WebApiContext } from './web-api/route.js';
import { emulatorSsoDomainSchema, type EmulatorSsoDomain } from './web-api/company.js';

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
  /**
   * Web API areas (first path segment below /api/v1, e.g. `userroles`, `company`) the token may not
   * use: answered 403, like a script token created without that permission.
   */
  deniedWebApi?: string[];
  /** Writes answered with success and not kept, to rehearse a SCIM server that stores nothing. */
  dropWrites?: DropWrites;
  /** Seats of the company's licence (`maxAssignments` of GET /company/license); default 10000. */
  seats?: number;
  /** SSO status (0-6) per user e-mail, as GET /users reports it; 1 (Active) for anyone not listed. */
  ssoStatus?: Record<string, number>;
  /** The company's SSO domains and the inclusion/exclusion lists they start with. */
  ssoDomains?: EmulatorSsoDomain[];
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
    owner: z
      .object({ email: z.string().min(1), name: z.string().min(1) })
      .nullable()
      .optional(),
    outsideEmails: z.array(z.string()).optional(),
    latencyMs: z.number().int().nonnegative().nullable().optional(),
    rateLimit: z.object({ max: z.number().int().nonnegative(), windowMs: z.number().int().positive() }).nullable().optional(),
    failureRate: z.number().min(0).max(1).nullable().optional(),
    failureMode: z.enum(['before', 'after', 'mixed']).nullable().optional(),
    seed: z.number().int().nullable().optional(),
    groups: z.boolean().nullable().optional(),
    pageSizeMax: z.number().int().positive().nullable().optional(),
    deniedWebApi: z.array(z.string()).nullable().optional(),
    dropWrites: z.strictObject({ groupMembers: z.boolean().optional(), groupCreate: z.boolean().optional() }).nullable().optional(),
    seats: z.number().int().nonnegative().nullable().optional(),
    ssoStatus: z.record(z.string(), z.number().int().min(0).max(6)).nullable().optional(),
    ssoDomains: z.array(emulatorSsoDomainSchema).nullable().optional(),
  })
  .strict();

type SwitchesPatch = z.infer<typeof emulatorSwitchesSchema>;
/** The switches in force; null and undefined both mean off. */
export type ActiveSwitches = Omit<SwitchesPatch, 'owner' | 'outsideEmails'>;

const SCIM_PREFIX = '/scim/v2';
const WEB_API_PREFIX = '/api/v1';
const ADMIN_PREFIX = '/_emulator';
const DEFAULT_SEED = 1;
const USER_ROUTES = ['GET /Users', 'POST /Users', 'PUT /Users', 'PATCH /Users', 'DELETE /Users'];
const GROUP_ROUTES = ['GET /Groups', 'POST /Groups', 'PATCH /Groups', 'DELETE /Groups'];
const KNOWN_ROUTES = [...USER_ROUTES, ...GROUP_ROUTES, 'GET /account'];
/** Stats keep one counter per method on these; anything else is counted as "<METHOD> /other". */
const COUNTED_RESOURCES = { scim: new Set(['Users', 'Groups']), web: new Set(['account', 'company', 'users', 'ssoDomain']) };

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
  private switches: ActiveSwitches = {};
  private random: () => number = seededRandom(DEFAULT_SEED);
  private limiter: FixedWindowLimiter | undefined;
  private counters: EmulatorStats = freshStats();
  private server: Server | undefined;
  private readonly resources: ResourceContext = {
    store: () => this.store,
    pageSizeMax: () => this.switches.pageSizeMax,
    countWrite: () => {
      this.counters.writes++;
    },
    countFilteredRead: () => {
      this.counters.filteredReads++;
    },
    dropWrites: () => this.switches.dropWrites ?? {},
  };

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

  /** Changes switches at run time; a key present with null (or undefined) turns that switch off, as on the admin route. */
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

    if (path.startsWith(`${ADMIN_PREFIX}/`)) {
      send(res, await this.admin(req, method, path.slice(ADMIN_PREFIX.length)), JSON_CONTENT_TYPE);
      return;
    }
    const surface = path.startsWith(`${SCIM_PREFIX}/`) ? 'scim' : path.startsWith(`${WEB_API_PREFIX}/`) ? 'web' : undefined;
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
      send(res, await this.webApi(req, method, segments, url.searchParams), JSON_CONTENT_TYPE);
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
    const drawn = drawInjectedFailure(this.random, this.switches.failureRate ?? 0, this.switches.failureMode ?? 'mixed');
    if (!drawn) return undefined;
    this.counters.injectedFailures++;
    return { before: drawn.before, reply: scimErrorReply(new ScimError(drawn.status, `Injected failure (${drawn.status})`)) };
  }

  private async webApi(req: IncomingMessage, method: string, segments: string[], query: URLSearchParams): Promise<Reply> {
    const area = segments[0] ?? '';
    if (this.switches.deniedWebApi?.includes(area)) return webError(403, 'insufficient_permissions', `The script token lacks the permission for /${area}`);
    const request = { method, segments: segments.map((s) => decodeId(s)), query, req };
    try {
      for (const route of WEB_API_ROUTES) {
        const reply = await route(request, this.webApiContext);
        if (reply) return reply;
      }
    } catch (err) {
      if (err instanceof ScimError) return webError(err.status, err.status === 404 ? 'not_found' : 'invalid_request', err.message);
      throw err;
    }
    return webError(404, 'not_found', 'No such Web API route');
  }

  private readonly webApiContext: WebApiContext = {
    store: () => this.store,
    owner: () => this.owner,
    countWrite: () => {
      this.counters.writes++;
    },
    switches: () => this.switches,
    pageSize: () => this.switches.pageSizeMax ?? undefined,
  };

  private async scim(req: IncomingMessage, method: string, resource: string, rest: string[], query: URLSearchParams): Promise<Reply> {
    if (rest.length > 1 || (resource !== 'Users' && resource !== 'Groups')) {
      throw new ScimError(404, `No SCIM resource at /${[resource, ...rest].join('/')}`);
    }
    const id = rest[0] === undefined ? undefined : decodeId(rest[0]);
    const handler = resource === 'Users' ? usersResource : groupsResource;
    return handler(this.resources, req, method, id, query);
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

function freshStats(): EmulatorStats {
  const byRoute = Object.fromEntries(KNOWN_ROUTES.map((route) => [route, 0]));
  return { requests: 0, byRoute, writes: 0, injectedFailures: 0, rateLimited: 0, filteredReads: 0 };
}

function urlHost(host: string): string {
  if (host === '' || host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}
