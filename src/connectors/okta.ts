import { setTimeout as sleep } from 'node:timers/promises';
import { Client, RequestExecutor } from '@okta/okta-sdk-nodejs';
import type { Logger } from 'pino';
import { z } from 'zod';
import { durationBetween } from '../config/duration.js';
import type { DirectoryGroup, DirectoryIssue, DirectoryRead, DirectoryUser } from '../model/directory.js';
import { SyncError, type FailureClass } from '../model/failure.js';
import { DEFAULT_BACKOFF, parseRetryAfter, withRetries, type BackoffPolicy } from '../net/retry.js';
import { outsideText, registerSecret } from '../net/secrets.js';
import { MAX_RESPONSE_BYTES, boundedBackoff, describeWait, isRedirect, redirectRefusal, requestSignal, waitRefusal } from '../net/request-limits.js';
import {
  SourceReadError,
  type ConnectionCheck,
  type DirectorySource,
  type ReadOptions,
  type SourceDeps,
} from './source.js';
import {
  describeWireProblem,
  httpFailureSchema,
  networkFailureSchema,
  oktaAppGroupSchema,
  oktaAppUserSchema,
  oktaGroupSchema,
  oktaIdSchema,
  oktaTokenErrorSchema,
  oktaTokenSchema,
  oktaUserSchema,
  snapshotSchema,
  type OktaUser,
  type OktaUserStatus,
  type Snapshot,
} from './okta-wire.js';

const oktaObjectId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'expected an Okta object id such as 0oa1b2c3d4E5f6G7h8i9');
const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

export const oktaSourceConfigSchema = z.strictObject({
  type: z.literal('okta'),
  orgUrl: z
    .url({ protocol: /^https?$/ })
    .refine((url) => url.startsWith('https://') || LOCAL_HOSTS.has(new URL(url).hostname), 'use https:// (plain http only for a local test double)')
    .transform((url) => url.replace(/\/+$/, ''))
    .describe('Okta org URL, e.g. https://acme.okta.com'),
  auth: z.discriminatedUnion('method', [
    z.strictObject({
      method: z.literal('apiToken'),
      apiToken: z.string().min(1).describe('Okta API token, sent as "SSWS <token>"; it has the rights of the admin who created it'),
    }),
    z.strictObject({
      method: z.literal('privateKey'),
      clientId: z.string().min(1).describe('client id of the Okta API service app'),
      privateKey: z.string().min(1).describe("the service app's private key, PEM or JWK (JSON)"),
      keyId: z.string().min(1).optional().describe('kid of that key, needed when the app has several keys'),
      scopes: z
        .array(z.string().min(1))
        .min(1)
        .default(['okta.users.read', 'okta.groups.read', 'okta.apps.read'])
        .describe('OAuth scopes granted to the service app'),
    }),
  ]).describe('API token (SSWS) or an OAuth 2.0 service app signing in with a private key (recommended)'),
  scope: z.discriminatedUnion('mode', [
    z.strictObject({
      mode: z.literal('app'),
      appId: oktaObjectId.describe("the TeamViewer app's id: its users (direct or via groups) and its assigned groups are in scope"),
    }),
    z.strictObject({
      mode: z.literal('groups'),
      groupIds: z.array(oktaObjectId).min(1).describe('Okta groups whose members (and the groups themselves) are in scope'),
    }),
  ]).describe('which users and groups are synced'),
  emailAttribute: z.enum(['email', 'login']).default('email').describe('Okta profile attribute that becomes the TeamViewer e-mail'),
  pageSize: z.number().int().min(1).max(200).default(200).describe('records per Okta page'),
  maxPages: z.number().int().min(1).default(10_000).describe('pages one listing may span before the read is refused as runaway'),
  concurrency: z.number().int().min(1).max(8).default(4).describe('groups read at the same time (Okta limits concurrent calls per org)'),
  timeout: durationBetween(1000, 10 * 60_000).default(60_000).describe('per request (the token request too), the whole answer included'),
  rateLimitReservePercent: z
    .number()
    .min(0)
    .max(90)
    .default(10)
    .describe("share of each Okta rate-limit bucket left to the org's other integrations: below it, calls are spread out until the bucket resets"),
  incremental: z
    .strictObject({
      enabled: z.boolean().default(false).describe('read only changed user attributes between full reads (app scope only)'),
      fullReadEvery: durationBetween(0, 30 * 86_400_000).default(86_400_000).describe('a full read at least this often (e.g. 24h), to correct any drift'),
    })
    .default({ enabled: false, fullReadEvery: 86_400_000 }),
  httpsProxy: z.url().optional().describe('proxy for Okta calls; HTTPS_PROXY from the environment is not used'),
});
export type OktaSourceConfig = z.output<typeof oktaSourceConfigSchema>;

export type OktaSourceDeps = SourceDeps;

// STAGED and PROVISIONED users have not activated their Okta account yet, so they count as inactive
// like SUSPENDED and DEPROVISIONED; the others can sign in (or will after a password/unlock step).
const ACTIVE_STATUSES: ReadonlySet<OktaUserStatus> = new Set(['ACTIVE', 'PASSWORD_EXPIRED', 'LOCKED_OUT', 'RECOVERY']);

// How far back an incremental read looks before the moment the previous read started: covers the
// one-second resolution of the Date header and changes made while that read was running.
const WATERMARK_OVERLAP_MS = 5 * 60_000;
const SNAPSHOT_KEY = 'okta:snapshot';
const APP_GROUPS_MIN_LIMIT = 20;


interface HeaderBag {
  get(name: string): string | null;
}
/** The part of the node-fetch Response the SDK's http client hands back. */
interface WireResponse {
  headers: HeaderBag;
  text(): Promise<string>;
}
interface ReadContext {
  signal?: AbortSignal;
  issues: DirectoryIssue[];
  /** Okta's clock at the first answer of this read: the next incremental read starts from it. */
  serverDate?: number;
}
type FetchRequest = Parameters<RequestExecutor['fetch']>[0];

/**
 * The SDK's plain executor held to tvsync's limits; retrying is tvsync's job (see OktaApi). Every
 * request, the token request among them, has a total deadline and a size cap, and follows no
 * redirect: node-fetch would otherwise resend the request (a 307 resends the token request's body,
 * the signed client assertion) to whatever host the redirect names.
 */
class TimedRequestExecutor extends RequestExecutor {
  constructor(private readonly timeoutMs: number) {
    super();
  }
  override async fetch(request: FetchRequest): ReturnType<RequestExecutor['fetch']> {
    // node-fetch options; the SDK's typings for them are incomplete.
    const given = request as { url?: string; method?: string; signal?: AbortSignal };
    const { signal } = requestSignal(this.timeoutMs, given.signal);
    const response = await super.fetch(Object.assign({}, request, { timeout: this.timeoutMs, size: MAX_RESPONSE_BYTES, redirect: 'manual', signal }));
    if (isRedirect(response.status)) {
      response.body?.resume?.();
      const url = new URL(given.url ?? '');
      const what = `${(given.method ?? 'GET').toUpperCase()} ${url.pathname}`;
      throw new SyncError('invalid', redirectRefusal('Okta', what, response.status, response.headers.get('location'), url), { status: response.status });
    }
    return response;
  }
}

function headersOf(value: unknown): HeaderBag | undefined {
  if (typeof value !== 'object' || value === null || !('headers' in value)) return undefined;
  const headers = value.headers;
  if (typeof headers === 'object' && headers !== null && 'get' in headers && typeof headers.get === 'function') return headers as HeaderBag;
  return undefined;
}

function serverTime(headers: HeaderBag): number | undefined {
  const at = Date.parse(headers.get('date') ?? '');
  return Number.isNaN(at) ? undefined : at;
}

/** How long until Okta's bucket resets, by Okta's own clock (x-rate-limit-reset vs Date), else Retry-After. */
function waitForReset(headers: HeaderBag | undefined): number | undefined {
  if (!headers) return undefined;
  const reset = Number(headers.get('x-rate-limit-reset'));
  if (Number.isFinite(reset) && reset > 0) return Math.max(0, reset * 1000 - (serverTime(headers) ?? Date.now()));
  return parseRetryAfter(headers.get('retry-after') ?? undefined);
}

/** Okta reports per endpoint bucket how many calls are left until it resets; near the end, slow down. */
class RateBudget {
  private readonly buckets = new Map<string, { remaining: number; limit: number; resetAt: number }>();
  constructor(private readonly reservePercent: number) {}

  observe(bucket: string, headers: HeaderBag | undefined): void {
    if (!headers) return;
    const remaining = Number(headers.get('x-rate-limit-remaining') ?? Number.NaN);
    const limit = Number(headers.get('x-rate-limit-limit') ?? Number.NaN);
    const untilReset = waitForReset(headers);
    if (!Number.isFinite(remaining) || !Number.isFinite(limit) || untilReset === undefined) return;
    this.buckets.set(bucket, { remaining, limit, resetAt: Date.now() + untilReset });
  }

  /** Spreads the calls left in the reserve evenly over the time until reset; none left: wait for it. */
  delayMs(bucket: string): number {
    const state = this.buckets.get(bucket);
    if (!state || state.remaining * 100 > state.limit * this.reservePercent) return 0;
    const untilReset = state.resetAt - Date.now();
    return untilReset > 0 ? Math.min(60_000, Math.ceil(untilReset / (state.remaining + 1))) : 0;
  }
}

/**
 * Service apps: the SDK fetches the access token itself (on first use and again after a 401) and
 * keeps it in `oauth.accessToken`. Every token it obtains is registered before it is sent.
 */
function registerObtainedTokens(client: Client): void {
  const oauth = client.oauth;
  if (!oauth) return;
  const obtain = oauth.getAccessToken.bind(oauth);
  oauth.getAccessToken = async (...args: Parameters<typeof obtain>) => {
    const answer: unknown = await obtain(...args);
    const token = oktaTokenSchema.safeParse(answer);
    if (token.success) registerSecret(token.data.access_token);
    return answer as Awaited<ReturnType<typeof obtain>>;
  };
}

function isAbort(err: unknown): boolean {
  return err instanceof Error && err.name === 'AbortError';
}

function failureClassOf(status: number): FailureClass {
  if (status === 401) return 'unauthorised';
  if (status === 403) return 'forbidden';
  if (status === 404) return 'not-found';
  if (status === 429) return 'rate-limited';
  if (status === 408 || status >= 500) return 'transient';
  return 'invalid';
}

/**
 * Okta's REST API through the SDK's http client (auth headers, OAuth tokens, DPoP), with tvsync's
 * retry rules. Raw requests rather than the SDK's typed list calls, so every payload meets zod and
 * paging follows Okta's Link headers exactly.
 */
class OktaApi {
  private client: Client | undefined;
  private readonly budget: RateBudget;
  private readonly backoff: BackoffPolicy & { maxWaitMs: number };

  constructor(
    private readonly config: OktaSourceConfig,
    private readonly log: Logger,
    backoff: BackoffPolicy,
  ) {
    this.budget = new RateBudget(config.rateLimitReservePercent);
    this.backoff = boundedBackoff(backoff);
    const auth = config.auth;
    registerSecret(auth.method === 'apiToken' ? auth.apiToken : auth.privateKey);
  }

  private sdk(): Client {
    if (this.client) return this.client;
    const { config } = this;
    const auth = config.auth;
    // The SDK fills gaps in its config from ~/.okta/okta.yaml, ./okta.yaml and OKTA_CLIENT_*
    // variables. Naming every key it reads (empty when unused) leaves it nothing to fill in.
    const sdkConfig = {
      orgUrl: config.orgUrl,
      authorizationMode: auth.method === 'apiToken' ? 'SSWS' : 'PrivateKey',
      token: auth.method === 'apiToken' ? auth.apiToken : '',
      clientId: auth.method === 'privateKey' ? auth.clientId : '',
      scopes: auth.method === 'privateKey' ? auth.scopes : [],
      privateKey: auth.method === 'privateKey' ? auth.privateKey : '',
      keyId: auth.method === 'privateKey' ? (auth.keyId ?? '') : '',
      userAgent: 'tvsync',
      httpsProxy: config.httpsProxy,
      // The SDK's default executor retries only 429s, and miscounts the wait when Date is missing;
      // withRetries covers 429, 5xx and network failures alike.
      requestExecutor: new TimedRequestExecutor(config.timeout),
      // Its cache keeps every resource with a self link: stale data and growing memory for a daemon.
      cacheMiddleware: null,
    };
    let client: Client;
    try {
      client = new Client(sdkConfig);
    } catch {
      // The message may quote an okta.yaml it tried to read: do not pass it on.
      throw new SyncError('invalid', 'could not set up the Okta SDK client; check the okta source settings (and any okta.yaml in the working or home directory)');
    }
    if (!config.httpsProxy) client.http.agent = undefined;
    registerObtainedTokens(client);
    this.client = client;
    return client;
  }

  /** Service apps only: fetches (or reuses) the access token and turns a refusal into a clear error. */
  async ensureAccessToken(): Promise<void> {
    const oauth = this.sdk().oauth;
    if (!oauth) return;
    let answer: unknown;
    try {
      answer = await oauth.getAccessToken();
    } catch (err) {
      if (err instanceof SyncError) throw err;
      // The token request carries no caller's signal: an abort is its deadline.
      if (isAbort(err)) throw new SyncError('transient', `Okta's token endpoint did not answer within ${describeWait(this.config.timeout)} (timeout)`);
      if (httpFailureSchema.safeParse(err).success || networkFailureSchema.safeParse(err).success) {
        throw this.toSyncError(err, 'POST /oauth2/v1/token');
      }
      throw new SyncError('unauthorised', 'could not sign the Okta client assertion: privateKey must be an RSA or EC private key, PEM or JWK (JSON)');
    }
    if (oktaTokenSchema.safeParse(answer).success) return;
    oauth.clearCachedAccessToken();
    const refusal = oktaTokenErrorSchema.safeParse(answer);
    const said = refusal.success ? refusal.data : {};
    if (said.errorCode === 'E0000047') throw new SyncError('rate-limited', "Okta's rate limit for the token endpoint is used up");
    const reason = said.error ? ` (${outsideText(said.error, 100)}${said.error_description ? `: ${outsideText(said.error_description)}` : ''})` : '';
    throw new SyncError(
      said.error ? 'unauthorised' : 'transient',
      `Okta did not issue an access token${reason}: check clientId, keyId, the private key and that the scopes ${this.config.auth.method === 'privateKey' ? this.config.auth.scopes.join(', ') : ''} are granted to the service app`,
    );
  }

  toSyncError(err: unknown, what: string): SyncError {
    if (err instanceof SyncError) return err;
    const http = httpFailureSchema.safeParse(err);
    if (http.success) {
      const { status, errorCode, errorSummary } = http.data;
      const failureClass = failureClassOf(status);
      const said = errorCode ? ` (${outsideText(errorCode, 40)}${errorSummary ? ` ${outsideText(errorSummary)}` : ''})` : '';
      const retryAfterMs = status === 429 ? waitForReset(headersOf(err)) : undefined;
      if (retryAfterMs !== undefined && retryAfterMs > this.backoff.maxWaitMs) {
        return new SyncError(failureClass, `Okta ${what} answered ${status}${said}: ${waitRefusal('Okta', retryAfterMs, this.backoff.maxWaitMs)}`, { status, retryAfterMs });
      }
      return new SyncError(failureClass, `Okta ${what} answered ${status}${said}: ${this.hint(failureClass)}`, { status, retryAfterMs });
    }
    const network = networkFailureSchema.safeParse(err);
    if (network.success && network.data.type === 'max-size') {
      return new SyncError('invalid', `Okta answered ${what} with more than ${MAX_RESPONSE_BYTES / 1024 / 1024} MiB; not read`);
    }
    if (network.success) {
      return new SyncError(
        'transient',
        `Okta at ${this.config.orgUrl} could not be reached for ${what} (${network.data.code ?? network.data.type}): check orgUrl, DNS, proxy and firewall`,
      );
    }
    const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    return new SyncError('invalid', `Okta ${what} failed unexpectedly: ${outsideText(message)}`);
  }

  private hint(failureClass: FailureClass): string {
    const byToken = this.config.auth.method === 'apiToken';
    switch (failureClass) {
      case 'unauthorised':
        return byToken
          ? 'Okta refused the API token; check that it is valid, not revoked, and that its admin is active'
          : "Okta refused the service app's access token; check the client id, key and granted scopes";
      case 'forbidden':
        return byToken
          ? "the API token's admin may not read users, groups and apps"
          : 'grant the service app okta.users.read, okta.groups.read and okta.apps.read and a read-only admin role';
      case 'not-found':
        return 'check orgUrl and the app id or group ids of the scope';
      case 'rate-limited':
        return "Okta's rate limit for this endpoint (shared by every integration in the org) is used up";
      case 'transient':
        return 'Okta had a temporary failure';
      default:
        return 'Okta rejected the request';
    }
  }

  async get(target: string | URL, bucket: string, ctx: ReadContext, policy: BackoffPolicy = this.backoff): Promise<{ body: unknown; next?: URL }> {
    const url = typeof target === 'string' ? new URL(this.config.orgUrl + target) : target;
    return withRetries(() => this.getOnce(url, bucket, ctx), policy, {
      ...(ctx.signal ? { signal: ctx.signal } : {}),
      onRetry: (err, waitMs, attempt) =>
        this.log.warn(
          { path: url.pathname, failureClass: err.failureClass, status: err.status, waitMs, attempt: attempt + 1, reason: err.message },
          'Okta call failed; retrying',
        ),
    });
  }

  private async getOnce(url: URL, bucket: string, ctx: ReadContext): Promise<{ body: unknown; next?: URL }> {
    const what = `GET ${url.pathname}`;
    const pause = this.budget.delayMs(bucket);
    if (pause > 0) {
      this.log.debug({ bucket, pauseMs: pause }, 'Okta rate limit nearly used up; slowing down');
      await sleep(pause, undefined, ctx.signal ? { signal: ctx.signal } : undefined);
    }
    let response: WireResponse;
    let text: string;
    // Covers the body too: node-fetch keeps the signal while the text is read.
    const { signal } = requestSignal(this.config.timeout, ctx.signal);
    try {
      await this.ensureAccessToken();
      // node-fetch options; the SDK's typings for them are incomplete.
      const request = { url: url.href, method: 'GET', headers: { Accept: 'application/json' }, signal };
      response = await this.sdk().http.http(url.href, request);
      text = await response.text();
    } catch (err) {
      if (isAbort(err) && ctx.signal?.aborted) throw err;
      if (isAbort(err)) throw new SyncError('transient', `Okta ${what} did not finish within ${describeWait(this.config.timeout)} (timeout)`);
      this.budget.observe(bucket, headersOf(err));
      throw this.toSyncError(err, what);
    }
    this.budget.observe(bucket, response.headers);
    ctx.serverDate ??= serverTime(response.headers);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new SyncError('invalid', `Okta ${what} answered with something that is not JSON: is orgUrl the Okta org itself?`);
    }
    const next = nextLink(response.headers.get('link'), url);
    if (next && next.origin !== url.origin) {
      throw new SyncError('invalid', `Okta's next-page link for ${url.pathname} points to ${next.origin}; credentials are sent to ${url.origin} only`);
    }
    return next ? { body, next } : { body };
  }

  /** Every page of a listing, following Link rel="next" until Okta gives none. */
  async *pages(path: string, bucket: string, ctx: ReadContext): AsyncGenerator<unknown[]> {
    let url: URL | undefined = new URL(this.config.orgUrl + path);
    for (let page = 1; url; page++) {
      if (page > this.config.maxPages) {
        throw new SyncError('invalid', `Okta listing ${url.pathname} did not end within ${this.config.maxPages} pages; raise maxPages if the directory is that large`);
      }
      const { body, next } = await this.get(url, bucket, ctx);
      const items = z.array(z.unknown()).safeParse(body);
      if (!items.success) throw new SyncError('invalid', `Okta answered page ${page} of ${url.pathname} with something other than a list`);
      yield items.data;
      url = next;
    }
  }
}

function nextLink(header: string | null, base: URL): URL | undefined {
  if (!header) return undefined;
  for (const part of header.split(/,(?=\s*<)/)) {
    const match = /^\s*<([^>]*)>(.*)$/s.exec(part);
    if (match?.[1] !== undefined && /;\s*rel="?next"?(\s|;|$)/i.test(match[2] ?? '')) return new URL(match[1], base);
  }
  return undefined;
}

/** Runs `fn` over the items, at most `limit` at a time; the first failure stops the rest. */
async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const index = next++;
      try {
        results[index] = await fn(items[index] as T);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

function idOf(raw: unknown): string | undefined {
  const parsed = oktaIdSchema.safeParse(raw);
  return parsed.success ? parsed.data.id : undefined;
}

export function createOktaSource(config: OktaSourceConfig, deps: OktaSourceDeps): DirectorySource {
  const log = deps.log.child({ source: 'okta' });
  const now = deps.now ?? Date.now;
  const backoff = deps.backoff ?? DEFAULT_BACKOFF;
  const api = new OktaApi(config, log, backoff);
  const { pageSize, concurrency } = config;
  const scope = config.scope;
  const scopeKey = JSON.stringify({ orgUrl: config.orgUrl, scope, emailAttribute: config.emailAttribute });

  function toDirectoryUser(user: OktaUser): DirectoryUser {
    const profile = user.profile;
    const out: DirectoryUser = { id: user.id, active: ACTIVE_STATUSES.has(user.status) };
    const email = config.emailAttribute === 'login' ? profile.login : profile.email;
    if (email) out.email = email;
    if (profile.displayName) out.displayName = profile.displayName;
    if (profile.firstName) out.givenName = profile.firstName;
    if (profile.lastName) out.familyName = profile.lastName;
    if (profile.preferredLanguage) out.preferredLanguage = profile.preferredLanguage;
    return out;
  }

  /** A user record, or undefined after noting why it was skipped. */
  function parseUser(raw: unknown, ctx: ReadContext): DirectoryUser | undefined {
    const parsed = oktaUserSchema.safeParse(raw);
    if (parsed.success) return toDirectoryUser(parsed.data);
    ctx.issues.push({ kind: 'user', objectId: idOf(raw), reason: `Okta user record skipped: ${describeWireProblem(parsed.error)}` });
    return undefined;
  }

  /** One group and its member ids; `member` turns a member record into an id (and may collect the user). */
  async function readGroup(id: string, embedded: unknown, member: (raw: unknown) => string | undefined, ctx: ReadContext): Promise<DirectoryGroup | undefined> {
    const path = `/api/v1/groups/${encodeURIComponent(id)}`;
    const record = oktaGroupSchema.safeParse(embedded ?? (await api.get(path, 'group', ctx)).body);
    const memberIds: string[] = [];
    for await (const page of api.pages(`${path}/users?limit=${pageSize}`, 'group-users', ctx)) {
      for (const raw of page) {
        const memberId = member(raw);
        if (memberId !== undefined) memberIds.push(memberId);
      }
    }
    if (record.success) return { id, name: record.data.profile.name, memberIds };
    ctx.issues.push({ kind: 'group', objectId: id, reason: `Okta group record skipped: ${describeWireProblem(record.error)}` });
    return undefined;
  }

  function memberIdOnly(groupId: string, ctx: ReadContext): (raw: unknown) => string | undefined {
    return (raw) => {
      const id = idOf(raw);
      if (id === undefined) ctx.issues.push({ kind: 'membership', objectId: groupId, reason: 'a member record of this Okta group has no id; skipped' });
      return id;
    };
  }

  async function readAppGroups(appId: string, ctx: ReadContext): Promise<(DirectoryGroup | undefined)[]> {
    const assigned: { id: string; group: unknown }[] = [];
    const limit = Math.max(APP_GROUPS_MIN_LIMIT, pageSize);
    for await (const page of api.pages(`/api/v1/apps/${appId}/groups?limit=${limit}&expand=group`, 'app-groups', ctx)) {
      for (const raw of page) {
        const parsed = oktaAppGroupSchema.safeParse(raw);
        if (parsed.success) assigned.push({ id: parsed.data.id, group: parsed.data._embedded?.group });
        else ctx.issues.push({ kind: 'group', objectId: idOf(raw), reason: `Okta group assignment skipped: ${describeWireProblem(parsed.error)}` });
      }
    }
    return mapLimited(assigned, concurrency, (a) => readGroup(a.id, a.group, memberIdOnly(a.id, ctx), ctx));
  }

  async function readAppUsersFull(appId: string, ctx: ReadContext): Promise<Map<string, DirectoryUser>> {
    const users = new Map<string, DirectoryUser>();
    for await (const page of api.pages(`/api/v1/apps/${appId}/users?limit=${pageSize}&expand=user`, 'app-users', ctx)) {
      for (const raw of page) {
        const parsed = oktaAppUserSchema.safeParse(raw);
        const embedded = parsed.success ? parsed.data._embedded?.user : undefined;
        if (embedded === undefined) {
          const reason = parsed.success ? 'the assignment came without its user' : describeWireProblem(parsed.error);
          ctx.issues.push({ kind: 'user', objectId: idOf(raw), reason: `Okta app assignment skipped: ${reason}` });
          continue;
        }
        const user = parseUser(embedded, ctx);
        if (user) users.set(user.id, user);
      }
    }
    return users;
  }

  // What lastUpdated can and cannot tell: it moves when a user's profile or status changes
  // (suspend, deactivate), so those come from one filtered /users listing. Assigning or unassigning
  // the app, and group membership changes, leave it alone: the assignment list and every group's
  // members are therefore re-read each cycle, and a newly assigned user with an old lastUpdated is
  // fetched by id. (Deactivating a user in Okta also drops their app assignments, so such a user
  // usually leaves the scope through the assignment list.) Undefined: too much is new, read fully.
  async function readAppUsersIncremental(appId: string, snapshot: Snapshot, ctx: ReadContext): Promise<Map<string, DirectoryUser> | undefined> {
    const assigned: string[] = [];
    for await (const page of api.pages(`/api/v1/apps/${appId}/users?limit=${pageSize}`, 'app-users', ctx)) {
      for (const raw of page) {
        const parsed = oktaAppUserSchema.safeParse(raw);
        if (parsed.success) assigned.push(parsed.data.id);
        else ctx.issues.push({ kind: 'user', objectId: idOf(raw), reason: `Okta app assignment skipped: ${describeWireProblem(parsed.error)}` });
      }
    }
    const inScope = new Set(assigned);
    const changed = new Map<string, DirectoryUser | undefined>();
    const filter = encodeURIComponent(`lastUpdated gt "${snapshot.watermark}"`);
    for await (const page of api.pages(`/api/v1/users?limit=${pageSize}&filter=${filter}`, 'users', ctx)) {
      for (const raw of page) {
        const id = idOf(raw);
        if (id !== undefined && inScope.has(id)) changed.set(id, parseUser(raw, ctx));
      }
    }
    const previous = new Map(snapshot.users.map((user) => [user.id, user]));
    const unknown = assigned.filter((id) => !changed.has(id) && !previous.has(id));
    if (unknown.length > pageSize) return undefined;
    const fetched = await mapLimited(unknown, concurrency, async (id) => {
      try {
        return parseUser((await api.get(`/api/v1/users/${encodeURIComponent(id)}`, 'user', ctx)).body, ctx);
      } catch (err) {
        if (err instanceof SyncError && err.failureClass === 'not-found') return undefined; // deleted since it was listed
        throw err;
      }
    });
    const byId = new Map(fetched.filter((user) => user !== undefined).map((user) => [user.id, user]));
    const users = new Map<string, DirectoryUser>();
    for (const id of assigned) {
      const user = changed.has(id) ? changed.get(id) : (previous.get(id) ?? byId.get(id));
      if (user) users.set(id, user);
    }
    return users;
  }

  async function readGroupScope(groupIds: string[], ctx: ReadContext): Promise<{ users: Map<string, DirectoryUser>; groups: (DirectoryGroup | undefined)[] }> {
    const users = new Map<string, DirectoryUser>();
    // Group member listings carry the whole user, so this scope needs no other user call (and an
    // incremental read would save nothing).
    const groups = await mapLimited(groupIds, concurrency, (id) =>
      readGroup(id, undefined, (raw) => {
        const user = parseUser(raw, ctx);
        if (user) users.set(user.id, user);
        return user?.id;
      }, ctx),
    );
    return { users, groups };
  }

  async function loadSnapshot(): Promise<Snapshot | undefined> {
    if (!config.incremental.enabled || scope.mode !== 'app') return undefined;
    try {
      const text = await deps.state.get(SNAPSHOT_KEY);
      if (text === undefined) return undefined;
      const parsed = snapshotSchema.safeParse(JSON.parse(text));
      if (parsed.success && parsed.data.scopeKey === scopeKey) return parsed.data;
      log.info('stored Okta snapshot is unusable or for another scope; reading fully');
    } catch (err) {
      log.warn({ err: outsideText(String(err)) }, 'could not load the Okta snapshot; reading fully');
    }
    return undefined;
  }

  async function saveSnapshot(snapshot: Snapshot): Promise<void> {
    try {
      await deps.state.set(SNAPSHOT_KEY, JSON.stringify(snapshot));
    } catch (err) {
      // Keeping the older snapshot is safe: its watermark is earlier, so nothing is missed.
      log.warn({ err: outsideText(String(err)) }, 'could not store the Okta snapshot; the next read starts from the previous one');
    }
  }

  function toSourceReadError(err: unknown): SourceReadError {
    if (err instanceof SourceReadError) return err;
    if (isAbort(err)) return new SourceReadError('Okta read was cancelled before it covered the scope');
    const failure = api.toSyncError(err, 'read');
    return new SourceReadError(`Okta read failed: ${failure.message}`, failure);
  }

  async function read(opts: ReadOptions = {}): Promise<DirectoryRead> {
    const startedAt = Date.now();
    let ctx: ReadContext = { issues: [], ...(opts.signal ? { signal: opts.signal } : {}) };
    try {
      if (scope.mode === 'groups') {
        const { users, groups } = await readGroupScope(scope.groupIds, ctx);
        return finish(users, groups, ctx, 'full');
      }
      const snapshot = await loadSnapshot();
      const due = snapshot === undefined || opts.mode === 'full' || now() - snapshot.fullReadAt >= config.incremental.fullReadEvery;
      let users = snapshot && !due ? await readAppUsersIncremental(scope.appId, snapshot, ctx) : undefined;
      const mode = users ? 'incremental' : 'full';
      if (!users) {
        ctx = { ...ctx, issues: [] };
        users = await readAppUsersFull(scope.appId, ctx);
      }
      const groups = await readAppGroups(scope.appId, ctx);
      if (config.incremental.enabled) {
        await saveSnapshot({
          scopeKey,
          fullReadAt: mode === 'full' || !snapshot ? now() : snapshot.fullReadAt,
          watermark: new Date((ctx.serverDate ?? startedAt) - WATERMARK_OVERLAP_MS).toISOString(),
          users: [...users.values()],
        });
      }
      return finish(users, groups, ctx, mode);
    } catch (err) {
      throw toSourceReadError(err);
    }
  }

  function finish(users: Map<string, DirectoryUser>, groups: (DirectoryGroup | undefined)[], ctx: ReadContext, mode: string): DirectoryRead {
    // A member outside the read (skipped record, or assigned after the user list was read) is left
    // out: memberIds only name users the read holds.
    const inRead = groups
      .filter((group): group is DirectoryGroup => group !== undefined)
      .map((group) => ({ ...group, memberIds: [...new Set(group.memberIds)].filter((id) => users.has(id)) }));
    log.info({ mode, users: users.size, groups: inRead.length, issues: ctx.issues.length }, 'Okta read complete');
    return { users: [...users.values()], groups: inRead, complete: true, issues: ctx.issues };
  }

  /** GET /api/v1/groups/{id} per group: Okta deletes groups outright, so 404 means deleted. */
  async function lookupGroups(ids: readonly string[]): Promise<Map<string, 'deleted' | 'out-of-scope'>> {
    const answers = new Map<string, 'deleted' | 'out-of-scope'>();
    const ctx: ReadContext = { issues: [] };
    await mapLimited([...new Set(ids)], concurrency, async (id) => {
      const path = `/api/v1/groups/${encodeURIComponent(id)}`;
      let body: unknown;
      try {
        ({ body } = await api.get(path, 'group', ctx));
      } catch (err) {
        const failure = api.toSyncError(err, `GET ${path}`);
        if (failure.failureClass !== 'not-found') throw failure;
        answers.set(id, 'deleted');
        return;
      }
      const group = oktaIdSchema.safeParse(body);
      if (!group.success) throw new SyncError('invalid', `Okta answered GET ${path} with a group tvsync cannot read (${describeWireProblem(group.error)})`);
      answers.set(id, 'out-of-scope');
    });
    return answers;
  }

  async function check(): Promise<ConnectionCheck> {
    const checks: ConnectionCheck['checks'] = [];
    const ctx: ReadContext = { issues: [] };
    const once: BackoffPolicy = { ...backoff, attempts: 1 };
    /** Size of one small page; a page that is not a list fails the check like it fails a read. */
    const pageLength = async (path: string, bucket: string): Promise<number> => {
      const items = z.array(z.unknown()).safeParse((await api.get(path, bucket, ctx, once)).body);
      if (!items.success) throw new SyncError('invalid', `Okta answered ${path} with something other than a list`);
      return items.data.length;
    };
    /** Records one check; false when later checks cannot succeed either. */
    const attempt = async (name: string, run: () => Promise<string>): Promise<boolean> => {
      try {
        checks.push({ name, ok: true, detail: await run() });
        return true;
      } catch (err) {
        const failure = api.toSyncError(err, name);
        checks.push({ name, ok: false, detail: failure.message });
        return !['unauthorised', 'transient', 'rate-limited'].includes(failure.failureClass);
      }
    };

    const auth = config.auth;
    const signedIn =
      auth.method === 'apiToken' ||
      (await attempt('access token', async () => {
        await api.ensureAccessToken();
        return `Okta issued an access token to service app ${auth.clientId}`;
      }));
    if (signedIn && scope.mode === 'app') {
      const base = `/api/v1/apps/${scope.appId}`;
      const usersOk = await attempt('assigned users', async () =>
        (await pageLength(`${base}/users?limit=1&expand=user`, 'app-users')) > 0 ? 'read a user assigned to the app' : 'the app has no users assigned yet',
      );
      if (usersOk) {
        await attempt('assigned groups', async () => {
          const n = await pageLength(`${base}/groups?limit=${APP_GROUPS_MIN_LIMIT}`, 'app-groups');
          return n > 0 ? `read ${n}${n === APP_GROUPS_MIN_LIMIT ? '+' : ''} group(s) assigned to the app` : 'the app has no groups assigned';
        });
      }
    } else if (signedIn && scope.mode === 'groups') {
      let next = await attempt('users', async () => ((await pageLength('/api/v1/users?limit=1', 'users')) > 0 ? 'read a user' : 'Okta answered, with no users'));
      for (const id of scope.groupIds) {
        if (!next) break;
        next = await attempt(`group ${id}`, async () => {
          const group = oktaGroupSchema.safeParse((await api.get(`/api/v1/groups/${id}`, 'group', ctx, once)).body);
          return group.success ? `found "${group.data.profile.name}"` : 'found, but the record could not be read';
        });
      }
    }
    return { ok: checks.every((c) => c.ok), checks };
  }

  return { kind: 'okta', read, check, lookupGroups };
}
