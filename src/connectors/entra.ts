import { createHash } from 'node:crypto';
import { ClientCertificateCredential, ClientSecretCredential, type ClientSecretCredentialOptions, type TokenCredential } from '@azure/identity';
import { Client, GraphError, type Context, type Middleware } from '@microsoft/microsoft-graph-client';
import type { Logger } from 'pino';
import { z } from 'zod';
import { durationBetween } from '../config/duration.js';
import type { DirectoryIssue, DirectoryRead, DirectoryUser } from '../model/directory.js';
import { SyncError } from '../model/failure.js';
import { DEFAULT_BACKOFF, parseRetryAfter, withRetries, type BackoffPolicy } from '../net/retry.js';
import { outsideText, registerSecret, scrubSecrets } from '../net/secrets.js';
import { MAX_RESPONSE_BYTES, boundedBackoff, describeWait, isRedirect, redirectRefusal, requestSignal, waitRefusal } from '../net/request-limits.js';
import {
  SourceReadError,
  type ConnectionCheck,
  type DirectorySource,
  type ReadOptions,
  type SourceDeps,
} from './source.js';
import {
  GROUP_DELTA_FIELDS,
  GROUP_TYPE,
  USER_FIELDS,
  USER_TYPE,
  appRoleAssignmentSchema,
  groupSchema,
  objectRefSchema,
  pageSchema,
  userSchema,
  type GraphPage,
} from './entra-wire.js';

const scopeSchema = z.discriminatedUnion('mode', [
  z.strictObject({
    mode: z.literal('assignment'),
    servicePrincipalId: z
      .string()
      .min(1)
      .describe('object id of the TeamViewer enterprise application (its service principal, not the appId)'),
  }),
  z.strictObject({
    mode: z.literal('groups'),
    groupIds: z.array(z.string().min(1)).min(1).describe('object ids of the groups whose members are in scope'),
  }),
]);

export const entraSourceConfigSchema = z
  .strictObject({
    type: z.literal('entra'),
    tenantId: z.string().min(1).describe('directory (tenant) id'),
    clientId: z.string().min(1).describe('application (client) id of the app registration tvsync signs in as'),
    clientSecret: z.string().min(1).optional().describe('client secret; or give certificate and privateKey'),
    certificate: z.string().min(1).optional().describe('PEM certificate uploaded to the app registration'),
    privateKey: z.string().min(1).optional().describe('PEM private key of that certificate'),
    graphBaseUrl: z
      .url()
      .default('https://graph.microsoft.com')
      .describe('Graph endpoint (scheme and host); US Gov: https://graph.microsoft.us, China: https://microsoftgraph.chinacloudapi.cn'),
    authorityHost: z
      .url()
      .default('https://login.microsoftonline.com')
      .describe('sign-in endpoint; US Gov: https://login.microsoftonline.us, China: https://login.chinacloudapi.cn'),
    disableInstanceDiscovery: z
      .boolean()
      .default(false)
      .describe(
        "skip Microsoft's instance discovery, which knows only Microsoft's own sign-in hosts: needed for an authorityHost that is a private endpoint, a proxy, an on-premises authority or a local rehearsal",
      ),
    scope: scopeSchema.describe('who is in scope: the users and groups assigned to the enterprise app, or members of listed groups'),
    nestedGroups: z
      .boolean()
      .default(false)
      .describe('count members of nested groups too; Entra app assignment itself grants only direct members'),
    emailAttribute: z
      .enum(['userPrincipalName', 'mail'])
      .default('userPrincipalName')
      .describe('user property that becomes the TeamViewer e-mail'),
    fullReadInterval: durationBetween(0, 30 * 86_400_000).default(86_400_000).describe('read everything at least this often; delta queries in between'),
    timeout: durationBetween(1000, 10 * 60_000).default(30_000).describe('per Graph or sign-in request, the whole answer included'),
    concurrency: z.number().int().min(1).max(16).default(4).describe('group listings in flight at once'),
    maxPages: z.number().int().min(1).default(10_000).describe('pages per listing; a listing that needs more fails the read'),
  })
  .superRefine((c, ctx) => {
    const certificate = c.certificate !== undefined && c.privateKey !== undefined;
    if (c.clientSecret === undefined && !certificate) {
      ctx.addIssue({ code: 'custom', path: ['clientSecret'], message: 'give clientSecret, or certificate and privateKey' });
    }
    if (c.clientSecret !== undefined && (c.certificate !== undefined || c.privateKey !== undefined)) {
      ctx.addIssue({ code: 'custom', path: ['clientSecret'], message: 'give either clientSecret or certificate and privateKey, not both' });
    }
  });
export type EntraSourceConfig = z.output<typeof entraSourceConfigSchema>;

export interface EntraSourceDeps extends SourceDeps {
  /** Replaces the credential built from the config (managed or workload identity, local fakes). */
  credential?: TokenCredential;
}

const PAGE_SIZE = 999;
const SNAPSHOT_KEY = 'entra.snapshot';

/** Thrown when the saved delta state cannot continue (expired link, unreadable change): read everything. */
class FullReadNeeded extends Error {}

/** What a Graph call is for: names it in messages, and says which permission a 403 lacks. */
interface Call {
  what: string;
  permission: string;
}
const LIST_USERS: Call = { what: 'reading users', permission: 'User.Read.All' };
const READ_GROUPS: Call = { what: 'reading groups', permission: 'GroupMember.Read.All' };
const LIST_ASSIGNMENTS: Call = { what: 'listing the app assignments', permission: 'Application.Read.All' };

interface GetOptions {
  /** First request only: later pages carry them in their links. */
  select?: readonly string[];
  top?: number;
  query?: Record<string, string>;
  /** Every request of a listing. */
  headers?: Record<string, string>;
  policy?: BackoffPolicy;
}

/** Microsoft's own sign-in hosts: MSAL knows their metadata and never asks instance discovery about them. */
const MICROSOFT_AUTHORITY_HOSTS = new Set([
  'login.microsoftonline.com',
  'login.microsoftonline.us',
  'login.chinacloudapi.cn',
  'login.partner.microsoftonline.cn',
  'login.microsoftonline.de',
  'login-us.microsoftonline.com',
  'login.sovcloud-identity.fr',
  'login.sovcloud-identity.de',
  'login.sovcloud-identity.sg',
]);

function isMicrosoftAuthority(authorityHost: string): boolean {
  return MICROSOFT_AUTHORITY_HOSTS.has(new URL(authorityHost).hostname.toLowerCase());
}

/** Thrown by GuardedFetch; GraphError keeps only an error's name and message, so the name marks it. */
const GUARD_REFUSAL = 'tvsync.refused';

function guardRefusal(message: string): Error {
  const err = new Error(message);
  err.name = GUARD_REFUSAL;
  return err;
}

/** The body read whole, up to `limit` bytes; a longer one is cancelled, not buffered. */
async function cappedBody(response: Response, limit: number, what: string): Promise<Uint8Array | null> {
  const declared = Number(response.headers.get('content-length') ?? Number.NaN);
  const tooLarge = () => guardRefusal(`Graph answered ${what} with more than ${limit / 1024 / 1024} MiB; not read`);
  if (declared > limit) {
    await response.body?.cancel();
    throw tooLarge();
  }
  if (!response.body) return null;
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

/**
 * The Graph client's last middleware: fetch without following redirects (the token would go
 * wherever a redirect points) and with the answer read up to a size cap, under the request's
 * signal, so the deadline covers the body too.
 */
class GuardedFetch implements Middleware {
  async execute(context: Context): Promise<void> {
    const url = typeof context.request === 'string' ? context.request : context.request.url;
    const what = `GET ${new URL(url).pathname}`;
    const response = await fetch(url, { ...(context.options as RequestInit | undefined), redirect: 'manual' });
    if (isRedirect(response.status)) {
      await response.body?.cancel();
      throw guardRefusal(redirectRefusal('Graph', what, response.status, response.headers.get('location'), url));
    }
    const body = await cappedBody(response, MAX_RESPONSE_BYTES, what);
    context.response = new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
  }
}

/** What the sign-in pipeline refused or gave up on; MSAL passes only its own message on. */
interface SignInNotes {
  problem?: { failureClass: 'invalid' | 'rate-limited' | 'transient'; message: string; retryAfterMs?: number };
}

type PipelinePolicy = NonNullable<ClientSecretCredentialOptions['additionalPolicies']>[number]['policy'];

/** Outermost: one deadline per sign-in request, covering the SDK's own retries and the body. */
function signInDeadline(timeoutMs: number, notes: SignInNotes): PipelinePolicy {
  return {
    name: 'tvsyncSignInDeadline',
    async sendRequest(request, next) {
      const deadline = AbortSignal.timeout(timeoutMs);
      const given = request.abortSignal;
      request.abortSignal = given instanceof AbortSignal ? AbortSignal.any([given, deadline]) : deadline;
      try {
        return await next(request);
      } catch (err) {
        if (deadline.aborted) {
          notes.problem = { failureClass: 'transient', message: `the sign-in endpoint did not answer within ${describeWait(timeoutMs)} (timeout)` };
        }
        throw err;
      }
    },
  };
}

/** Innermost: sees every answer before the SDK's redirect and retry handling does. */
function signInGuard(maxWaitMs: number, notes: SignInNotes): PipelinePolicy {
  return {
    name: 'tvsyncSignInGuard',
    async sendRequest(request, next) {
      const response = await next(request);
      const what = `${request.method} ${new URL(request.url).pathname}`;
      if (isRedirect(response.status)) {
        const message = redirectRefusal('The Entra sign-in endpoint', what, response.status, response.headers.get('location'), request.url);
        notes.problem = { failureClass: 'invalid', message };
        throw guardRefusal(message);
      }
      const retryAfterMs = response.status === 429 || response.status === 503 ? parseRetryAfter(response.headers.get('retry-after') ?? undefined) : undefined;
      if (retryAfterMs !== undefined && retryAfterMs > maxWaitMs) {
        const message = `${what} was throttled (HTTP ${response.status}): ${waitRefusal('The Entra sign-in endpoint', retryAfterMs, maxWaitMs)}`;
        notes.problem = { failureClass: 'rate-limited', message, retryAfterMs };
        throw guardRefusal(message);
      }
      return response;
    },
  };
}

/** Every token the credential obtains is registered with the scrubber before anyone uses it. */
function registeringTokens(credential: TokenCredential): TokenCredential {
  return {
    async getToken(scopes, options) {
      const token = await credential.getToken(scopes, options);
      if (token) registerSecret(token.token);
      return token;
    },
  };
}

/** Graph over the SDK's request builder, with tvsync's own token, retries and failure classes. */
class EntraGraph {
  private readonly client: Client;
  private readonly origin: string;
  private readonly backoff: BackoffPolicy & { maxWaitMs: number };
  private readonly credential: TokenCredential;

  constructor(
    private readonly config: EntraSourceConfig,
    credential: TokenCredential,
    private readonly signIn: SignInNotes,
    private readonly log: Logger,
    backoff: BackoffPolicy,
    private readonly now: () => number,
  ) {
    this.origin = new URL(config.graphBaseUrl).origin;
    this.backoff = boundedBackoff(backoff);
    registerSecret(config.clientSecret);
    registerSecret(config.privateKey);
    this.credential = registeringTokens(credential);
    // No SDK auth or retry middleware: its AuthenticationHandler drops the token for hosts it does not
    // know (any http:// fake, custom hosts) and tvsync retries itself, honouring Retry-After.
    this.client = Client.initWithMiddleware({ baseUrl: `${this.origin}/`, defaultVersion: 'v1.0', middleware: new GuardedFetch() });
  }

  async token(signal?: AbortSignal): Promise<string> {
    try {
      const token = await this.credential.getToken(`${this.origin}/.default`, signal ? { abortSignal: signal } : {});
      if (token) return token.token;
    } catch (err) {
      if (signal?.aborted) throw new SourceReadError('signing in to Entra: cancelled');
      throw this.signInFailure(err);
    }
    throw new SyncError('unauthorised', `signing in to Entra tenant ${this.config.tenantId} as app ${this.config.clientId} returned no token`);
  }

  private signInFailure(err: unknown): SyncError {
    const { tenantId, clientId, authorityHost, disableInstanceDiscovery } = this.config;
    const prefix = `signing in to Entra tenant ${tenantId} as app ${clientId} failed`;
    const noted = this.signIn.problem;
    this.signIn.problem = undefined;
    if (noted) {
      return new SyncError(noted.failureClass, `${prefix}: ${noted.message}`, noted.retryAfterMs !== undefined ? { retryAfterMs: noted.retryAfterMs } : {});
    }
    const reason = outsideText(err instanceof Error ? (err.message.split('\n')[0] ?? err.name) : 'unknown error');
    // MSAL could not learn the authority's endpoints: instance discovery does not know the host, or
    // the host publishes no OpenID configuration. Retrying does not change either.
    if (/endpoints_resolution_error|untrusted_authority|openid_config_error/i.test(reason)) {
      const fix =
        !disableInstanceDiscovery && !isMicrosoftAuthority(authorityHost)
          ? `Microsoft's instance discovery does not know the authority ${authorityHost}: set disableInstanceDiscovery: true for a private, proxied, on-premises or local authority, or fix authorityHost`
          : `the authority ${authorityHost} did not give its OpenID configuration (${authorityHost}/${tenantId}/v2.0/.well-known/openid-configuration): fix authorityHost, or check that it can be reached`;
      return new SyncError('invalid', `${prefix}: ${reason}. ${fix}.`);
    }
    const network = /ECONN|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|socket|network/i.test(reason);
    return new SyncError(
      network ? 'transient' : 'unauthorised',
      `${prefix}: ${reason}. ` +
        (network ? `Check that ${authorityHost} can be reached.` : 'Check tenantId, clientId and the client secret or certificate (it may have expired).'),
    );
  }

  async get(call: Call, target: string, opts: GetOptions = {}, signal?: AbortSignal): Promise<unknown> {
    const path = this.relative(target);
    return withRetries(
      async () => {
        const authorization = `Bearer ${await this.token(signal)}`;
        const request = requestSignal(this.config.timeout, signal);
        let builder = this.client
          .api(path)
          .headers({ ...opts.headers, Authorization: authorization })
          .option('signal', request.signal);
        if (opts.select) builder = builder.select([...opts.select]);
        if (opts.top !== undefined) builder = builder.top(opts.top);
        if (opts.query) builder = builder.query(opts.query);
        try {
          const body: unknown = await builder.get();
          return body;
        } catch (err) {
          if (signal?.aborted) throw new SourceReadError(`${call.what}: cancelled`);
          throw this.failure(err, call, request.deadline);
        }
      },
      opts.policy ? boundedBackoff(opts.policy) : this.backoff,
      {
        ...(signal ? { signal } : {}),
        onRetry: (err, waitMs, attempt) =>
          this.log.warn({ status: err.status, waitMs, attempt: attempt + 1, reason: err.message }, `Entra: ${call.what}: ${err.failureClass}, retrying`),
      },
    );
  }

  /** Every page of a listing, following @odata.nextLink to the end (or maxPages). */
  async *pages(call: Call, first: string, opts: GetOptions, signal?: AbortSignal): AsyncGenerator<GraphPage> {
    const later: GetOptions = { ...(opts.headers ? { headers: opts.headers } : {}), ...(opts.policy ? { policy: opts.policy } : {}) };
    let body = await this.get(call, first, opts, signal);
    for (let count = 1; ; count++) {
      const page = pageSchema.safeParse(body);
      if (!page.success) throw new SyncError('invalid', `${call.what}: Graph sent a page tvsync cannot read (${zodReason(page.error)})`);
      yield page.data;
      const next = page.data['@odata.nextLink'];
      if (!next) return;
      if (count >= this.config.maxPages) {
        throw new SyncError('invalid', `${call.what}: stopped after ${count} pages (maxPages); raise maxPages if the directory really is that large`);
      }
      body = await this.get(call, next, later, signal);
    }
  }

  /** The SDK only recognises https links as absolute, so links become paths on the configured origin. */
  private relative(target: string): string {
    if (!/^https?:\/\//i.test(target)) return target;
    const url = new URL(target);
    if (url.origin !== this.origin) {
      throw new SyncError('invalid', `Graph sent a link to ${url.origin}, not to the configured graphBaseUrl ${this.origin}; not following it`);
    }
    return url.pathname.replace(/^\/v1\.0\//, '/') + url.search;
  }

  private failure(err: unknown, call: Call, deadline: AbortSignal): SyncError | FullReadNeeded {
    if (err instanceof SyncError) return err;
    if (!(err instanceof GraphError) || err.statusCode <= 0) {
      if (err instanceof GraphError && err.code === GUARD_REFUSAL) return new SyncError('invalid', `${call.what}: ${err.message}`);
      if (deadline.aborted) return new SyncError('transient', `${call.what}: Graph did not answer within ${describeWait(this.config.timeout)} (timeout)`);
      const reason = err instanceof Error ? err.message || err.name : 'unknown error';
      return new SyncError('transient', `${call.what}: no answer from ${this.origin} (${outsideText(reason)}); check network access to Microsoft Graph`);
    }
    const status = err.statusCode;
    const code = err.code ?? '';
    const detail = `HTTP ${status}${code ? ` ${outsideText(code, 60)}` : ''}${err.message ? `: ${outsideText(err.message)}` : ''}`;
    if (status === 410 || /^(syncStateNotFound|resyncRequired)$/i.test(code)) return new FullReadNeeded(`${call.what}: ${detail}`);
    const retryAfterMs = parseRetryAfter(err.headers?.get('retry-after') ?? undefined, this.now());
    if (status === 429 || (status >= 500 && retryAfterMs !== undefined)) {
      const wait = retryAfterMs !== undefined ? { retryAfterMs } : {};
      if (retryAfterMs !== undefined && retryAfterMs > this.backoff.maxWaitMs) {
        return new SyncError('rate-limited', `${call.what}: Graph is throttling (${detail}): ${waitRefusal('Graph', retryAfterMs, this.backoff.maxWaitMs)}`, { status, ...wait });
      }
      return new SyncError('rate-limited', `${call.what}: Graph is throttling (${detail})`, { status, ...wait });
    }
    if (status >= 500) return new SyncError('transient', `${call.what}: Graph failed (${detail})`, { status });
    if (status === 401) return new SyncError('unauthorised', `${call.what}: Graph refused the token (${detail}); check tenantId and the app's credentials`, { status });
    if (status === 403) {
      return new SyncError(
        'forbidden',
        `${call.what}: access denied (${detail}); grant the app the Microsoft Graph application permission ${call.permission} and admin consent`,
        { status },
      );
    }
    // Graph names a missing directory object by its code; the status alone is not the whole contract.
    const notFound = status === 404 || code === 'Request_ResourceNotFound';
    return new SyncError(notFound ? 'not-found' : 'invalid', `${call.what}: ${detail}`, { status });
  }
}

function zodReason(error: z.ZodError): string {
  const issue = error.issues[0];
  return issue ? `${issue.path.join('.') || 'record'}: ${issue.message}` : 'invalid';
}

type UserParse = { user: DirectoryUser } | { reason: string };

function toDirectoryUser(raw: unknown, emailAttribute: EntraSourceConfig['emailAttribute']): UserParse {
  const parsed = userSchema.safeParse(raw);
  if (!parsed.success) return { reason: zodReason(parsed.error) };
  const u = parsed.data;
  // accountEnabled is null for a few object kinds and absent without User.Read.All: Entra's default is enabled.
  const user: DirectoryUser = { id: u.id, active: u.accountEnabled ?? true };
  const fields = { email: u[emailAttribute], displayName: u.displayName, givenName: u.givenName, familyName: u.surname, preferredLanguage: u.preferredLanguage };
  for (const [key, value] of Object.entries(fields) as [keyof typeof fields, string | undefined][]) {
    if (value !== undefined) user[key] = value;
  }
  return { user };
}

/** Runs fn over items with at most `limit` in flight; stops handing out items after the first failure. */
async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const item = items[next++] as T;
      try {
        await fn(item);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

const issueSchema = z.object({ objectId: z.string().optional(), kind: z.enum(['user', 'group', 'membership']), reason: z.string() });
const scopedGroupSchema = z.object({
  id: z.string(),
  name: z.string(),
  /** Every member id read, also of members whose record was unreadable (their later fix arrives by delta). */
  memberIds: z.array(z.string()),
  /** Nested mode: groups inside this one, whose membership changes touch it. */
  nestedGroupIds: z.array(z.string()),
});
type ScopedGroup = z.output<typeof scopedGroupSchema>;

/** What a read leaves behind so the next one can start from delta links and still return the whole scope. */
const snapshotSchema = z.object({
  version: z.literal(1),
  fingerprint: z.string(),
  fullReadAt: z.number(),
  usersDeltaLink: z.string(),
  groupsDeltaLink: z.string(),
  directUserIds: z.array(z.string()),
  groups: z.array(scopedGroupSchema),
  users: z.array(
    z.object({
      id: z.string(),
      email: z.string().optional(),
      displayName: z.string().optional(),
      formattedName: z.string().optional(),
      givenName: z.string().optional(),
      familyName: z.string().optional(),
      active: z.boolean(),
      preferredLanguage: z.string().optional(),
    }),
  ),
  issues: z.array(issueSchema),
});
type Snapshot = z.output<typeof snapshotSchema>;

/** The in-scope roots: users and groups assigned to the app, or the configured groups. */
interface ScopeRoots {
  directUserIds: Set<string>;
  /** Group id → name where the listing already told it. */
  groups: Map<string, string | undefined>;
}

type UserChange = { kind: 'updated'; user: DirectoryUser } | { kind: 'removed' } | { kind: 'unreadable'; reason: string };

export function createEntraSource(config: EntraSourceConfig, deps: EntraSourceDeps): DirectorySource {
  const now = deps.now ?? Date.now;
  const log = deps.log;
  const backoff = deps.backoff ?? DEFAULT_BACKOFF;
  const signIn: SignInNotes = {};
  if (config.disableInstanceDiscovery && isMicrosoftAuthority(config.authorityHost)) {
    log.warn({ authorityHost: config.authorityHost }, "Entra: disableInstanceDiscovery is meant for authorities Microsoft does not know; Microsoft's own sign-in hosts need no instance discovery");
  }
  const graph = new EntraGraph(config, deps.credential ?? credentialFrom(config, signIn, boundedBackoff(backoff).maxWaitMs), signIn, log, backoff, now);
  const fingerprint = createHash('sha256')
    .update(JSON.stringify([config.tenantId, new URL(config.graphBaseUrl).origin, config.scope, config.nestedGroups, config.emailAttribute]))
    .digest('hex')
    .slice(0, 16);

  /**
   * Groups the last delta round reported removed (soft-deleted or gone for good): Graph answers 404
   * for them, so a lookup need not ask. Only the latest read's round counts, so a group restored
   * since an older round is never answered from that round.
   */
  let removedByDelta: ReadonlySet<string> = new Set();

  async function latestDeltaLink(kind: 'users' | 'groups', signal?: AbortSignal): Promise<string> {
    const call = kind === 'users' ? LIST_USERS : READ_GROUPS;
    const select = kind === 'users' ? USER_FIELDS : GROUP_DELTA_FIELDS;
    let link: string | undefined;
    for await (const page of graph.pages(call, `/${kind}/delta`, { select, query: { $deltaToken: 'latest' } }, signal)) {
      link = page['@odata.deltaLink'] ?? link;
    }
    if (!link) throw new SyncError('invalid', `${call.what}: Graph sent no delta link for ${kind}`);
    return link;
  }

  async function readScopeRoots(issues: DirectoryIssue[], signal?: AbortSignal): Promise<ScopeRoots> {
    const roots: ScopeRoots = { directUserIds: new Set(), groups: new Map() };
    if (config.scope.mode === 'groups') {
      for (const id of config.scope.groupIds) roots.groups.set(id, undefined);
      return roots;
    }
    const path = `/servicePrincipals/${encodeURIComponent(config.scope.servicePrincipalId)}/appRoleAssignedTo`;
    const select = ['principalId', 'principalType', 'principalDisplayName'];
    for await (const page of graph.pages(LIST_ASSIGNMENTS, path, { select, top: PAGE_SIZE }, signal)) {
      for (const raw of page.value) {
        const parsed = appRoleAssignmentSchema.safeParse(raw);
        if (!parsed.success) {
          issues.push({ kind: 'membership', reason: `an app assignment could not be read (${zodReason(parsed.error)}); skipped` });
          continue;
        }
        const { principalId, principalType, principalDisplayName } = parsed.data;
        if (principalType === 'User') roots.directUserIds.add(principalId);
        // Entra grants an assigned group's direct members only; nested members come in only with nestedGroups.
        else if (principalType === 'Group') roots.groups.set(principalId, principalDisplayName);
      }
    }
    return roots;
  }

  /** Lists one scoped group's members into `users`; undefined when an assigned group has gone. */
  async function readGroup(
    id: string,
    nameHint: string | undefined,
    users: Map<string, DirectoryUser>,
    issues: DirectoryIssue[],
    signal?: AbortSignal,
  ): Promise<ScopedGroup | undefined> {
    const groupPath = `/groups/${encodeURIComponent(id)}`;
    const call: Call = { ...READ_GROUPS, what: `reading group ${id}` };
    try {
      let name = nameHint;
      if (name === undefined) {
        const group = groupSchema.safeParse(await graph.get(call, groupPath, { select: ['id', 'displayName'] }, signal));
        if (!group.success) throw new SyncError('invalid', `${call.what}: Graph sent a group tvsync cannot read (${zodReason(group.error)})`);
        name = group.data.displayName ?? id;
      }
      const memberIds = new Set<string>();
      const nestedGroupIds = new Set<string>();
      const path = config.nestedGroups ? `${groupPath}/transitiveMembers` : `${groupPath}/members/microsoft.graph.user`;
      for await (const page of graph.pages(call, path, { select: USER_FIELDS, top: PAGE_SIZE }, signal)) {
        for (const raw of page.value) {
          const ref = objectRefSchema.safeParse(raw);
          if (!ref.success) {
            issues.push({ kind: 'membership', objectId: id, reason: `a member of group ${name} could not be read (${zodReason(ref.error)}); skipped` });
            continue;
          }
          const type = ref.data['@odata.type'];
          if (type === GROUP_TYPE) nestedGroupIds.add(ref.data.id);
          if (type !== undefined && type !== USER_TYPE) continue; // devices, contacts, service principals
          memberIds.add(ref.data.id);
          const parsed = toDirectoryUser(raw, config.emailAttribute);
          if ('user' in parsed) users.set(parsed.user.id, parsed.user);
          else issues.push({ kind: 'user', objectId: ref.data.id, reason: `user record could not be read (${parsed.reason}); skipped` });
        }
      }
      return { id, name, memberIds: [...memberIds], nestedGroupIds: [...nestedGroupIds] };
    } catch (err) {
      if (!(err instanceof SyncError) || err.failureClass !== 'not-found') throw err;
      if (config.scope.mode === 'groups') {
        throw new SyncError('not-found', `group ${id} in scope.groupIds was not found in Entra; fix or remove the id`, { status: 404 });
      }
      issues.push({ kind: 'group', objectId: id, reason: `group ${nameHint ?? id} is assigned to the app but was not found (deleted?); skipped` });
      return undefined;
    }
  }

  async function readDirectUsers(ids: string[], users: Map<string, DirectoryUser>, issues: DirectoryIssue[], signal?: AbortSignal): Promise<void> {
    await forEachLimited(ids, config.concurrency, async (id) => {
      let raw: unknown;
      try {
        raw = await graph.get({ ...LIST_USERS, what: `reading user ${id}` }, `/users/${encodeURIComponent(id)}`, { select: USER_FIELDS }, signal);
      } catch (err) {
        if (!(err instanceof SyncError) || err.failureClass !== 'not-found') throw err;
        issues.push({ kind: 'user', objectId: id, reason: 'user is assigned to the app but was not found (deleted, or not replicated yet); skipped' });
        return;
      }
      const parsed = toDirectoryUser(raw, config.emailAttribute);
      if ('user' in parsed) users.set(id, parsed.user);
      else issues.push({ kind: 'user', objectId: id, reason: `user record could not be read (${parsed.reason}); skipped` });
    });
  }

  async function readGroups(
    wanted: [string, string | undefined][],
    users: Map<string, DirectoryUser>,
    issues: DirectoryIssue[],
    signal?: AbortSignal,
  ): Promise<ScopedGroup[]> {
    const read = new Map<string, ScopedGroup>();
    await forEachLimited(wanted, config.concurrency, async ([id, name]) => {
      const group = await readGroup(id, name, users, issues, signal);
      if (group) read.set(id, group);
    });
    return wanted.flatMap(([id]) => read.get(id) ?? []);
  }

  async function readUserChanges(link: string, signal?: AbortSignal): Promise<{ changes: Map<string, UserChange>; link: string }> {
    const changes = new Map<string, UserChange>();
    let next: string | undefined;
    for await (const page of graph.pages(LIST_USERS, link, { headers: { Prefer: `odata.maxpagesize=${PAGE_SIZE}` } }, signal)) {
      for (const raw of page.value) {
        const ref = objectRefSchema.safeParse(raw);
        if (!ref.success) throw new FullReadNeeded(`a user change could not be read (${zodReason(ref.error)})`);
        if (ref.data['@removed']) {
          changes.set(ref.data.id, { kind: 'removed' });
          continue;
        }
        const parsed = toDirectoryUser(raw, config.emailAttribute);
        changes.set(ref.data.id, 'user' in parsed ? { kind: 'updated', user: parsed.user } : { kind: 'unreadable', reason: parsed.reason });
      }
      next = page['@odata.deltaLink'] ?? next;
    }
    if (!next) throw new SyncError('invalid', 'reading user changes: the delta round ended without a delta link');
    return { changes, link: next };
  }

  /** Which groups changed (members, name, removal); the same group may come on several pages. */
  async function readGroupChanges(
    link: string,
    signal?: AbortSignal,
  ): Promise<{ touched: Set<string>; names: Map<string, string>; removed: Set<string>; link: string }> {
    const touched = new Set<string>();
    const names = new Map<string, string>();
    const removed = new Set<string>();
    let next: string | undefined;
    for await (const page of graph.pages(READ_GROUPS, link, { headers: { Prefer: `odata.maxpagesize=${PAGE_SIZE}` } }, signal)) {
      for (const raw of page.value) {
        const ref = objectRefSchema.safeParse(raw);
        if (!ref.success) throw new FullReadNeeded(`a group change could not be read (${zodReason(ref.error)})`);
        touched.add(ref.data.id);
        // A group may come on several pages; its last entry says whether it is gone (or back).
        if (ref.data['@removed']) removed.add(ref.data.id);
        else removed.delete(ref.data.id);
        const group = groupSchema.safeParse(raw);
        if (!ref.data['@removed'] && group.success && group.data.displayName) names.set(group.data.id, group.data.displayName);
      }
      next = page['@odata.deltaLink'] ?? next;
    }
    if (!next) throw new SyncError('invalid', 'reading group changes: the delta round ended without a delta link');
    return { touched, names, removed, link: next };
  }

  async function finish(
    base: Pick<Snapshot, 'fullReadAt' | 'usersDeltaLink' | 'groupsDeltaLink'>,
    roots: ScopeRoots,
    groups: ScopedGroup[],
    users: Map<string, DirectoryUser>,
    issues: DirectoryIssue[],
  ): Promise<DirectoryRead> {
    const inScope = new Set([...roots.directUserIds, ...groups.flatMap((g) => g.memberIds)]);
    const readUsers = [...inScope].flatMap((id) => users.get(id) ?? []);
    const present = new Set(readUsers.map((u) => u.id));
    const seen = new Set<string>();
    const uniqueIssues = issues.filter((i) => {
      const key = `${i.kind}\u0000${i.objectId ?? ''}\u0000${i.reason}`;
      return seen.has(key) ? false : (seen.add(key), true);
    });
    const snapshot: Snapshot = {
      version: 1,
      fingerprint,
      ...base,
      directUserIds: [...roots.directUserIds],
      groups,
      users: readUsers,
      issues: uniqueIssues,
    };
    await deps.state.set(SNAPSHOT_KEY, JSON.stringify(snapshot));
    return {
      users: readUsers,
      groups: groups.map((g) => ({ id: g.id, name: g.name, memberIds: g.memberIds.filter((id) => present.has(id)) })),
      complete: true,
      issues: uniqueIssues,
    };
  }

  async function fullRead(signal?: AbortSignal): Promise<DirectoryRead> {
    // Links first: what changes while the listing runs is replayed next cycle instead of being lost.
    const usersDeltaLink = await latestDeltaLink('users', signal);
    const groupsDeltaLink = await latestDeltaLink('groups', signal);
    const users = new Map<string, DirectoryUser>();
    const issues: DirectoryIssue[] = [];
    const roots = await readScopeRoots(issues, signal);
    const groups = await readGroups([...roots.groups], users, issues, signal);
    await readDirectUsers([...roots.directUserIds].filter((id) => !users.has(id)), users, issues, signal);
    const read = await finish({ fullReadAt: now(), usersDeltaLink, groupsDeltaLink }, roots, groups, users, issues);
    removedByDelta = new Set();
    return read;
  }

  async function incrementalRead(saved: Snapshot, signal?: AbortSignal): Promise<DirectoryRead> {
    const userChanges = await readUserChanges(saved.usersDeltaLink, signal);
    const groupChanges = await readGroupChanges(saved.groupsDeltaLink, signal);
    const issues: DirectoryIssue[] = [];
    const users = new Map(saved.users.map((u): [string, DirectoryUser] => [u.id, u]));
    // Users once in scope, also those whose record was unreadable or who were soft-deleted (they may come back).
    const known = new Set([...saved.directUserIds, ...saved.groups.flatMap((g) => g.memberIds)]);
    for (const [id, change] of userChanges.changes) {
      if (!known.has(id)) continue;
      if (change.kind === 'updated') users.set(id, change.user);
      else if (change.kind === 'removed') users.delete(id);
      else issues.push({ kind: 'user', objectId: id, reason: `changed user record could not be read (${change.reason}); kept as it was` });
    }

    const roots = await readScopeRoots(issues, signal);
    const previous = new Map(saved.groups.map((g) => [g.id, g]));
    const touched = (g: ScopedGroup): boolean => groupChanges.touched.has(g.id) || g.nestedGroupIds.some((id) => groupChanges.touched.has(id));
    const kept: ScopedGroup[] = [];
    const stale: [string, string | undefined][] = [];
    for (const [id, assignedName] of roots.groups) {
      const prev = previous.get(id);
      const name = assignedName ?? groupChanges.names.get(id) ?? prev?.name;
      if (prev && name !== undefined && !touched(prev)) kept.push({ ...prev, name });
      else stale.push([id, name]);
    }
    const relisted = await readGroups(stale, users, issues, signal);
    const byId = new Map([...kept, ...relisted].map((g) => [g.id, g]));
    const groups = [...roots.groups.keys()].flatMap((id) => byId.get(id) ?? []);
    await readDirectUsers([...roots.directUserIds].filter((id) => !users.has(id)), users, issues, signal);

    // Problems found by earlier reads stay reported while they last; relisted groups reported theirs afresh.
    const wanted = new Set([...roots.directUserIds, ...groups.flatMap((g) => g.memberIds)]);
    const relistedIds = new Set(relisted.map((g) => g.id));
    const carried = saved.issues.filter((i) =>
      i.objectId === undefined
        ? false
        : i.kind === 'user'
          ? wanted.has(i.objectId) && !users.has(i.objectId)
          : roots.groups.has(i.objectId) && !relistedIds.has(i.objectId),
    );
    const base = { fullReadAt: saved.fullReadAt, usersDeltaLink: userChanges.link, groupsDeltaLink: groupChanges.link };
    const read = await finish(base, roots, groups, users, [...carried, ...issues]);
    removedByDelta = groupChanges.removed;
    return read;
  }

  async function loadSnapshot(): Promise<Snapshot | undefined> {
    const text = await deps.state.get(SNAPSHOT_KEY);
    if (text === undefined) return undefined;
    try {
      return snapshotSchema.parse(JSON.parse(text));
    } catch {
      log.warn('Entra: saved delta state is unreadable; reading everything');
      return undefined;
    }
  }

  function fullReadReason(saved: Snapshot | undefined, opts: ReadOptions): string | undefined {
    if (opts.mode === 'full') return 'a full read was asked for';
    if (!saved) return 'no saved delta state';
    if (saved.fingerprint !== fingerprint) return 'the scope or attribute settings changed';
    if (now() - saved.fullReadAt >= config.fullReadInterval) return 'the full read interval has passed';
    return undefined;
  }

  async function read(opts: ReadOptions = {}): Promise<DirectoryRead> {
    try {
      const saved = opts.mode === 'full' ? undefined : await loadSnapshot();
      const reason = fullReadReason(saved, opts);
      if (saved && reason === undefined) {
        try {
          return await incrementalRead(saved, opts.signal);
        } catch (err) {
          if (!(err instanceof FullReadNeeded)) throw err;
          log.info({ reason: err.message }, 'Entra: delta state cannot continue; reading everything');
        }
      } else {
        log.info({ reason }, 'Entra: full read');
      }
      return await fullRead(opts.signal);
    } catch (err) {
      if (err instanceof SourceReadError) throw err;
      const message = err instanceof Error ? err.message : String(err);
      throw new SourceReadError(`Entra read failed: ${scrubSecrets(message)}`, err);
    }
  }

  /** GET /groups/{id} per group, unless the last delta round already said it was removed. */
  async function lookupGroups(ids: readonly string[]): Promise<Map<string, 'deleted' | 'out-of-scope'>> {
    const answers = new Map<string, 'deleted' | 'out-of-scope'>();
    const ask: string[] = [];
    for (const id of new Set(ids)) {
      if (removedByDelta.has(id)) answers.set(id, 'deleted');
      else ask.push(id);
    }
    await forEachLimited(ask, config.concurrency, async (id) => {
      const call: Call = { ...READ_GROUPS, what: `looking up group ${id} in Entra` };
      let body: unknown;
      try {
        body = await graph.get(call, `/groups/${encodeURIComponent(id)}`, { select: ['id'] });
      } catch (err) {
        if (!(err instanceof SyncError) || err.failureClass !== 'not-found') throw err;
        answers.set(id, 'deleted');
        return;
      }
      const group = groupSchema.safeParse(body);
      if (!group.success) throw new SyncError('invalid', `${call.what}: Graph sent a group tvsync cannot read (${zodReason(group.error)})`);
      answers.set(id, 'out-of-scope');
    });
    return answers;
  }

  async function check(): Promise<ConnectionCheck> {
    const checks: ConnectionCheck['checks'] = [];
    const policy: BackoffPolicy = { ...backoff, attempts: Math.min(backoff.attempts, 2) };
    const attempt = async (name: string, fn: () => Promise<string>): Promise<boolean> => {
      try {
        checks.push({ name, ok: true, detail: await fn() });
        return true;
      } catch (err) {
        checks.push({ name, ok: false, detail: err instanceof Error ? err.message : String(err) });
        return false;
      }
    };
    const firstPage = async (call: Call, path: string, opts: GetOptions): Promise<unknown[]> => {
      const page = pageSchema.safeParse(await graph.get(call, path, { ...opts, top: 5, policy }));
      if (!page.success) throw new SyncError('invalid', `${call.what}: Graph sent a page tvsync cannot read`);
      return page.data.value;
    };
    const tryGroup = (id: string): Promise<boolean> =>
      attempt(`read group ${id}`, async () => {
        const group = groupSchema.safeParse(await graph.get({ ...READ_GROUPS, what: `reading group ${id}` }, `/groups/${encodeURIComponent(id)}`, { select: ['id', 'displayName'], policy }));
        if (!group.success) throw new SyncError('invalid', `reading group ${id}: Graph sent a group tvsync cannot read (${zodReason(group.error)})`);
        const members = await firstPage({ ...READ_GROUPS, what: `reading members of group ${id}` }, `/groups/${encodeURIComponent(id)}/members/microsoft.graph.user`, { select: ['id'] });
        return `group "${group.data.displayName ?? id}": members can be read (${members.length} on a first page of 5)`;
      });

    const signedIn = await attempt('sign in', async () => {
      await graph.token();
      return `signed in to tenant ${config.tenantId} as app ${config.clientId}`;
    });
    if (!signedIn) return { ok: false, checks };
    await attempt('read users', async () => `users can be read (${(await firstPage(LIST_USERS, '/users', { select: ['id'] })).length} on a first page of 5)`);
    if (config.scope.mode === 'groups') {
      for (const id of config.scope.groupIds) await tryGroup(id);
    } else {
      let firstGroup: string | undefined;
      const path = `/servicePrincipals/${encodeURIComponent(config.scope.servicePrincipalId)}/appRoleAssignedTo`;
      await attempt('read app assignments', async () => {
        const assignments = (await firstPage(LIST_ASSIGNMENTS, path, { select: ['principalId', 'principalType'] })).flatMap((raw) => {
          const parsed = appRoleAssignmentSchema.safeParse(raw);
          return parsed.success ? [parsed.data] : [];
        });
        firstGroup = assignments.find((a) => a.principalType === 'Group')?.principalId;
        return assignments.length === 0
          ? 'no user or group is assigned to the app yet: nothing is in scope'
          : `app assignments can be read (${assignments.length} on a first page of 5)`;
      });
      if (firstGroup !== undefined) await tryGroup(firstGroup);
    }
    return { ok: checks.every((c) => c.ok), checks };
  }

  return { kind: 'entra', read, check, lookupGroups };
}

function credentialFrom(config: EntraSourceConfig, notes: SignInNotes, maxWaitMs: number): TokenCredential {
  const options: ClientSecretCredentialOptions = {
    authorityHost: config.authorityHost,
    disableInstanceDiscovery: config.disableInstanceDiscovery,
    additionalPolicies: [
      { policy: signInDeadline(config.timeout, notes), position: 'perCall' },
      { policy: signInGuard(maxWaitMs, notes), position: 'perRetry' },
    ],
  };
  if (config.clientSecret !== undefined) return new ClientSecretCredential(config.tenantId, config.clientId, config.clientSecret, options);
  // @azure/identity wants key and certificate in one PEM.
  const pem = `${config.privateKey ?? ''}\n${config.certificate ?? ''}`;
  return new ClientCertificateCredential(config.tenantId, config.clientId, { certificate: pem }, options);
}
