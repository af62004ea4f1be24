import axios from 'axios';
import type { Logger } from 'pino';
import { z } from 'zod';
import { durationBetween } from '../config/duration.js';
import type { DirectoryGroup, DirectoryIssue, DirectoryRead, DirectoryUser } from '../model/directory.js';
import { SyncError, type FailureClass } from '../model/failure.js';
import { DEFAULT_BACKOFF, parseRetryAfter, withRetries } from '../net/retry.js';
import { outsideText, registerSecret } from '../net/secrets.js';
import { MAX_RESPONSE_BYTES, boundedBackoff, describeWait, isRedirect, redirectRefusal, requestSignal, waitRefusal } from '../net/request-limits.js';
import { SourceReadError, type ConnectionCheck, type DirectorySource, type ReadOptions, type SourceDeps } from './source.js';
import {
  SYSTEM_USER_FIELDS,
  graphConnectionSchema,
  graphObjectWithPathsSchema,
  idOfSystemUser,
  idOfUserGroup,
  systemUserListSchema,
  systemUserSchema,
  userGroupSchema,
  v2ListSchema,
  type SystemUser,
} from './jumpcloud-wire.js';

/**
 * JumpCloud as a source: user groups (bound to the TeamViewer application, or listed) and their
 * users, over JumpCloud's REST API (v1 for user attributes, v2 for groups and the graph). As in
 * JumpCloud's own identity management, the users in scope are the members of those groups; users
 * bound to the application directly only when `includeDirectUserBindings` says so.
 * JumpCloud has no change feed for users or groups, so every read is a full one and no state is kept.
 */
export const jumpcloudSourceConfigSchema = z.strictObject({
  type: z.literal('jumpcloud'),
  apiKey: z.string().min(1).describe('API key of a JumpCloud administrator with read access (sent as x-api-key)'),
  orgId: z.string().min(1).optional().describe('organisation id (x-org-id); only multi-tenant portal administrators need it'),
  baseUrl: z
    .url()
    .default('https://console.jumpcloud.com/api')
    .describe('API base URL; https://console.eu.jumpcloud.com/api for the EU region'),
  scope: z
    .discriminatedUnion('mode', [
      z.strictObject({
        mode: z.literal('application'),
        applicationId: z.string().min(1).describe('id of the TeamViewer SSO application in JumpCloud'),
        includeDirectUserBindings: z
          .boolean()
          .default(false)
          .describe(
            "also sync users bound to the application directly, in no bound group; JumpCloud's own identity management provisions only members of bound user groups",
          ),
      }),
      z.strictObject({
        mode: z.literal('groups'),
        groupIds: z.array(z.string().min(1)).min(1).describe('ids of the user groups to sync'),
      }),
    ])
    .describe('application: the user groups bound to the TeamViewer application and their members; groups: the listed user groups'),
  nestedGroups: z
    .boolean()
    .default(false)
    .describe("a group's members include those of the groups inside it (JumpCloud's /membership) rather than direct members only"),
  maxPages: z.number().int().min(1).default(5000).describe('pages of 100 records any one list may span before the read fails'),
  concurrency: z.number().int().min(1).max(4).default(4).describe('requests to JumpCloud in flight at once'),
  timeout: durationBetween(1000, 10 * 60_000).default(30_000).describe('per request, the whole answer included'),
});
export type JumpcloudSourceConfig = z.infer<typeof jumpcloudSourceConfigSchema>;

/** `state` is unused: with no delta API there is nothing to carry between reads. */
export type JumpcloudSourceDeps = SourceDeps;

/** v2 caps `limit` at 100; v1 pages the same way. */
const PAGE_SIZE = 100;

export function createJumpcloudSource(config: JumpcloudSourceConfig, deps: JumpcloudSourceDeps): DirectorySource {
  const get = createClient(config, deps);
  return {
    kind: 'jumpcloud',
    // `mode` is ignored: every read is full.
    async read(opts: ReadOptions = {}): Promise<DirectoryRead> {
      const stop = new AbortController();
      const signal = opts.signal ? AbortSignal.any([opts.signal, stop.signal]) : stop.signal;
      try {
        return await new DirectoryReader(get, config, deps.log, signal).read();
      } catch (err) {
        stop.abort(); // requests still queued behind the failed one are not sent
        throw asReadError(err);
      }
    },
    check: () => checkConnection(get, config),
    lookupGroups: (ids) => lookupGroups(get, ids),
  };
}

/**
 * GET /v2/usergroups/{id} per group; the client's limiter bounds how many are in flight. JumpCloud
 * deletes user groups outright, so 404 means deleted.
 */
async function lookupGroups(get: Get, ids: readonly string[]): Promise<Map<string, 'deleted' | 'out-of-scope'>> {
  const answers = new Map<string, 'deleted' | 'out-of-scope'>();
  const stop = new AbortController();
  try {
    await Promise.all(
      [...new Set(ids)].map(async (id) => {
        const path = `/v2/usergroups/${encodeURIComponent(id)}`;
        let data: unknown;
        try {
          ({ data } = await get(path, {}, stop.signal));
        } catch (err) {
          if (!(err instanceof SyncError) || err.failureClass !== 'not-found') throw err;
          answers.set(id, 'deleted');
          return;
        }
        parsePage(idOfUserGroup, data, `GET ${path}`);
        answers.set(id, 'out-of-scope');
      }),
    );
  } catch (err) {
    stop.abort(); // lookups still queued behind the failed one are not sent
    throw err;
  }
  return answers;
}

type Get = (path: string, params: Record<string, string | number>, signal?: AbortSignal) => Promise<{ data: unknown; total?: number }>;

function createClient(config: JumpcloudSourceConfig, deps: JumpcloudSourceDeps): Get {
  const baseUrl = config.baseUrl.replace(/\/+$/, '');
  registerSecret(config.apiKey);
  const http = axios.create({
    baseURL: baseUrl,
    // In Node this is an idle timeout; the total deadline is the request's signal.
    timeout: config.timeout,
    // A redirect would carry the API key to wherever it points: none is followed.
    maxRedirects: 0,
    maxContentLength: MAX_RESPONSE_BYTES,
    headers: { Accept: 'application/json', 'x-api-key': config.apiKey, ...(config.orgId ? { 'x-org-id': config.orgId } : {}) },
  });
  const now = deps.now ?? Date.now;
  const backoff = boundedBackoff(deps.backoff ?? DEFAULT_BACKOFF);
  const limits = { timeoutMs: config.timeout, maxWaitMs: backoff.maxWaitMs };
  // One limiter for the whole source, held through retries: a throttled JumpCloud sees fewer requests, not more.
  const slot = createLimiter(config.concurrency);

  return (path, params, signal) =>
    slot(() =>
      withRetries(
        async () => {
          if (signal?.aborted) throw new SourceReadError('the JumpCloud read was stopped');
          const request = requestSignal(config.timeout, signal);
          try {
            const res = await http.get<unknown>(path, { params, signal: request.signal });
            return { data: res.data, total: count(res.headers['x-total-count']) };
          } catch (err) {
            throw toFailure(err, path, baseUrl, now(), { ...limits, deadline: request.deadline });
          }
        },
        backoff,
        {
          signal,
          onRetry: (err, waitMs, attempt) =>
            deps.log.warn({ path, status: err.status, waitMs, attempt: attempt + 1, reason: err.message }, `JumpCloud request ${err.failureClass}; retrying`),
        },
      ),
    );
}

/** What a person can do about a refusal, by HTTP status. */
const REFUSALS: Partial<Record<number, [FailureClass, string]>> = {
  401: ['unauthorised', 'was refused (HTTP 401): JumpCloud did not accept the API key; check apiKey, and set orgId if it belongs to a multi-tenant administrator'],
  403: ['forbidden', 'was refused (HTTP 403): the administrator behind the API key may not read this, or orgId names an organisation it cannot manage'],
  404: ['not-found', 'found nothing (HTTP 404): check the application or group ids in the scope'],
  501: ['unavailable', 'is not offered by this JumpCloud (HTTP 501)'],
};

interface Limits {
  timeoutMs: number;
  maxWaitMs: number;
  /** This request's deadline: fired means too slow, not cancelled. */
  deadline: AbortSignal;
}

/** What JumpCloud said about a failure (its `message`, else the body), scrubbed of secrets before it is cut. */
function saidBy(data: unknown): string {
  if (data === undefined || data === null || data === '') return '';
  const message = z.object({ message: z.string().min(1) }).safeParse(data);
  const text = message.success ? message.data.message : typeof data === 'string' ? data : JSON.stringify(data);
  const said = outsideText(text, 200);
  return said ? `: ${said}` : '';
}

/** Axios errors carry the request headers, the API key among them: only our own message leaves here. */
function toFailure(err: unknown, path: string, baseUrl: string, nowMs: number, limits: Limits): SyncError | SourceReadError {
  const where = `JumpCloud GET ${path}`;
  if (axios.isCancel(err)) {
    if (!limits.deadline.aborted) return new SourceReadError('the JumpCloud read was stopped');
    return new SyncError('transient', `${where} did not finish within ${describeWait(limits.timeoutMs)} (timeout); JumpCloud or the network is too slow`);
  }
  if (!axios.isAxiosError(err)) return new SyncError('invalid', `${where} failed: ${outsideText(err instanceof Error ? err.message : String(err))}`);
  const status = err.response?.status;
  if (status === undefined) {
    if (err.code === axios.AxiosError.ERR_BAD_RESPONSE && /maxContentLength/.test(err.message)) {
      return new SyncError('invalid', `${where} answered with more than ${MAX_RESPONSE_BYTES / 1024 / 1024} MiB; not read`);
    }
    const why = err.code ?? 'no answer';
    return new SyncError('transient', `could not reach JumpCloud at ${baseUrl} for GET ${path} (${why}); check baseUrl and the network`);
  }
  if (isRedirect(status)) {
    const location = err.response?.headers.location;
    return new SyncError('invalid', redirectRefusal('JumpCloud', `GET ${path}`, status, typeof location === 'string' ? location : undefined, baseUrl), { status });
  }
  const said = saidBy(err.response?.data);
  const retryAfterMs = parseRetryAfter(err.response?.headers['retry-after'], nowMs);
  if (status === 429 || (status >= 500 && retryAfterMs !== undefined)) {
    if (retryAfterMs !== undefined && retryAfterMs > limits.maxWaitMs) {
      return new SyncError('rate-limited', `${where} was throttled (HTTP ${status}): ${waitRefusal('JumpCloud', retryAfterMs, limits.maxWaitMs)}`, { status, retryAfterMs });
    }
    const wait = retryAfterMs !== undefined ? { retryAfterMs } : {};
    return new SyncError('rate-limited', `${where} was throttled (HTTP ${status})`, { status, ...wait });
  }
  const refusal = REFUSALS[status];
  if (refusal) return new SyncError(refusal[0], `${where} ${refusal[1]}${said ? ` (JumpCloud said${said})` : ''}`, { status });
  // JumpCloud's API guidance counts 500 with 502-504 as temporary.
  if (status >= 500) return new SyncError('transient', `${where} failed with HTTP ${status}${said}; JumpCloud is likely having a temporary problem`, { status });
  return new SyncError('invalid', `${where} was rejected (HTTP ${status}${said})`, { status });
}

function asReadError(err: unknown): SourceReadError {
  if (err instanceof SourceReadError) return err;
  if (err instanceof SyncError) return new SourceReadError(`JumpCloud read failed: ${err.message}`, err);
  return new SourceReadError(`JumpCloud read failed: ${outsideText(err instanceof Error ? err.message : String(err), 500)}`, err);
}

function count(header: unknown): number | undefined {
  if (typeof header !== 'string' && typeof header !== 'number') return undefined;
  const n = Number(header);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/** At most `max` tasks run at once; the others wait their turn in order. */
function createLimiter(max: number): <T>(task: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async (task) => {
    if (active < max) active++;
    else await new Promise<void>((resolve) => waiting.push(resolve));
    try {
      return await task();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else active--;
    }
  };
}

/** Parses a payload at the edge; a page JumpCloud got wrong fails the read rather than shrinking it. */
function parsePage<T>(schema: z.ZodType<T>, data: unknown, what: string): T {
  const parsed = schema.safeParse(data);
  if (parsed.success) return parsed.data;
  throw new SyncError('invalid', `JumpCloud answered ${what} with a page tvsync cannot read (${explain(parsed.error)})`);
}

function explain(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((issue) => `${issue.path.join('.') || 'record'}: ${issue.message}`)
    .join('; ');
}

interface Page {
  items: unknown[];
  total?: number;
}
type FetchPage = (skip: number) => Promise<Page>;

/**
 * The pages after `first`, each reduced by `keep` as it arrives so raw pages are not held. With the
 * total known (v1 totalCount, v2 x-total-count) the remaining offsets are fetched in parallel (the
 * client's limiter caps how many); after that, or without a total, page follows page until one comes
 * back short or the total is reached. `drifted` says the total moved meanwhile: skip paging may then
 * have shifted records past us.
 */
async function readAfter<T>(
  first: Page,
  fetchPage: FetchPage,
  keep: (items: unknown[]) => T[],
  what: string,
  maxPages: number,
): Promise<{ kept: T[]; drifted: boolean }> {
  const tooLong = () =>
    new SourceReadError(`JumpCloud's ${what} run past ${maxPages} pages of ${PAGE_SIZE}; raise maxPages if the directory really is that large`);
  const fetch = async (skip: number) => {
    const page = await fetchPage(skip);
    return { size: page.items.length, total: page.total, kept: keep(page.items) };
  };
  const pages: Awaited<ReturnType<typeof fetch>>[] = [];
  let last: { size: number; total?: number | undefined } = { size: first.items.length, total: first.total };
  let lastSkip = 0;
  if (first.total !== undefined && first.items.length === PAGE_SIZE) {
    const pageCount = Math.ceil(first.total / PAGE_SIZE);
    if (pageCount > maxPages) throw tooLong();
    const skips = Array.from({ length: Math.max(0, pageCount - 1) }, (_, i) => (i + 1) * PAGE_SIZE);
    pages.push(...(await Promise.all(skips.map(fetch))));
    last = pages.at(-1) ?? last;
    lastSkip = skips.at(-1) ?? 0;
  }
  while (last.size === PAGE_SIZE && (last.total === undefined || lastSkip + PAGE_SIZE < last.total)) {
    if (pages.length + 1 >= maxPages) throw tooLong();
    lastSkip += PAGE_SIZE;
    const next = await fetch(lastSkip);
    pages.push(next);
    last = next;
  }
  return {
    kept: pages.flatMap((page) => page.kept),
    drifted: first.total !== undefined && pages.some((page) => page.total !== undefined && page.total !== first.total),
  };
}

/** A collection whose records can be listed page by page or fetched one by one. */
interface Collection<T> {
  kind: 'user' | 'group';
  what: string;
  page: FetchPage;
  /** The record, or undefined when JumpCloud no longer has it. */
  one(id: string): Promise<unknown>;
  idOf(raw: unknown): string | undefined;
  schema: z.ZodType<T>;
}

class DirectoryReader {
  private readonly issues: DirectoryIssue[] = [];
  /** Lists whose totals moved while they were read. */
  private readonly changed: string[] = [];

  constructor(
    private readonly get: Get,
    private readonly config: JumpcloudSourceConfig,
    private readonly log: Logger,
    private readonly signal: AbortSignal,
  ) {}

  async read(): Promise<DirectoryRead> {
    const { scope } = this.config;
    const [groupIds, directUserIds] =
      scope.mode === 'application'
        ? await Promise.all([
            this.boundGroupIds(scope.applicationId),
            scope.includeDirectUserBindings ? this.directlyBoundUserIds(scope.applicationId) : [],
          ])
        : [[...new Set(scope.groupIds)], []];

    const [members, groupLookup] = await Promise.all([
      Promise.all(groupIds.map((id) => this.memberIds(id))),
      this.lookup(new Set(groupIds), this.groups()),
    ]);
    if (groupLookup.missing.length > 0) {
      throw new SourceReadError(
        `JumpCloud has no user group ${groupLookup.missing.join(', ')}; ${
          scope.mode === 'groups' ? 'remove it from scope.groupIds' : 'it was probably deleted during the read, and the next read will not see it'
        }`,
      );
    }

    const userLookup = await this.lookup(new Set([...members.flat(), ...directUserIds]), this.users());
    if (userLookup.missing.length > 0) {
      this.log.debug({ count: userLookup.missing.length }, 'JumpCloud users in scope were deleted during the read; left out');
    }
    const users = userLookup.found;

    const groups: DirectoryGroup[] = groupIds.flatMap((id, i) => {
      const group = groupLookup.found.get(id);
      if (!group) return []; // malformed: already an issue
      const memberIds = [...new Set(members[i] ?? [])].filter((userId) => users.has(userId));
      return [{ id, name: group.name, memberIds }];
    });
    const complete = this.changed.length === 0;
    const incompleteReason = `JumpCloud changed while it was read (${this.changed.join('; ')}), so records may have been skipped; the next read starts over`;
    this.log.debug({ users: users.size, groups: groups.length, issues: this.issues.length, complete }, 'JumpCloud read done');
    return {
      users: [...users.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
      groups,
      complete,
      ...(complete ? {} : { incompleteReason }),
      issues: this.issues,
    };
  }

  /**
   * Groups bound to the application directly (a one-edge path). A group reached only through another
   * group is not synced as a group of its own; with nestedGroups its users count as members of the bound one.
   */
  private boundGroupIds(applicationId: string): Promise<string[]> {
    const path = `/v2/applications/${encodeURIComponent(applicationId)}/usergroups`;
    return this.list(path, `user groups bound to application ${applicationId}`, (raw) => {
      const parsed = graphObjectWithPathsSchema.safeParse(raw);
      if (!parsed.success) this.issues.push({ kind: 'group', reason: `a bound user group was skipped: ${explain(parsed.error)}` });
      else if (parsed.data.type === 'user_group' && parsed.data.paths.some((path) => path.length === 1)) return parsed.data.id;
      return undefined;
    });
  }

  /**
   * Users bound to the application themselves (a one-edge path), not through a group. JumpCloud's
   * own provisioning leaves them out; `includeDirectUserBindings` brings them in, each as a
   * TeamViewer user in no synced group unless a bound group holds them too.
   */
  private directlyBoundUserIds(applicationId: string): Promise<string[]> {
    const path = `/v2/applications/${encodeURIComponent(applicationId)}/users`;
    return this.list(path, `users bound to application ${applicationId}`, (raw) => {
      const parsed = graphObjectWithPathsSchema.safeParse(raw);
      if (!parsed.success) this.issues.push({ kind: 'user', reason: `a user bound to the application was skipped: ${explain(parsed.error)}` });
      else if (parsed.data.type === 'user' && parsed.data.paths.some((p) => p.length === 1)) return parsed.data.id;
      return undefined;
    });
  }

  /**
   * /membership lists the effective (flattened) user members, /members the direct edges. Only users
   * count: a group inside the group reaches /membership through its users and is ignored on /members.
   */
  private memberIds(groupId: string): Promise<string[]> {
    const nested = this.config.nestedGroups;
    const path = `/v2/usergroups/${encodeURIComponent(groupId)}/${nested ? 'membership' : 'members'}`;
    const entry = nested ? graphObjectWithPathsSchema : graphConnectionSchema.transform((edge) => edge.to);
    return this.list(path, `members of user group ${groupId}`, (raw) => {
      const parsed = entry.safeParse(raw);
      if (!parsed.success) {
        this.issues.push({ objectId: groupId, kind: 'membership', reason: `a member entry was skipped: ${explain(parsed.error)}` });
      }
      else if (parsed.data.type === 'user') return parsed.data.id;
      return undefined;
    });
  }

  /** The ids `pick` finds in all of a v2 list; it records an issue for what it cannot read. */
  private async list(path: string, what: string, pick: (raw: unknown) => string | undefined): Promise<string[]> {
    const fetchPage: FetchPage = async (skip) => {
      const { data, total } = await this.get(path, { limit: PAGE_SIZE, skip }, this.signal);
      return { items: parsePage(v2ListSchema, data, `GET ${path}`), ...(total !== undefined ? { total } : {}) };
    };
    const keep = (items: unknown[]) => items.flatMap((raw) => pick(raw) ?? []);
    const first = await fetchPage(0);
    const firstIds = keep(first.items);
    const rest = await readAfter(first, fetchPage, keep, what, this.config.maxPages);
    if (rest.drifted) this.changed.push(`the ${what}`);
    return [...firstIds, ...rest.kept];
  }

  /**
   * The records with these ids, fetched whichever way takes fewer requests: one by one when there are
   * fewer of them than pages in the whole collection (a small scope in a large directory), else by
   * listing. Skip paging can miss records that shift while it runs, so any id the listing did not
   * return is then fetched by id as well; `missing` are those JumpCloud no longer has.
   */
  private async lookup<T>(ids: ReadonlySet<string>, c: Collection<T>): Promise<{ found: Map<string, T>; missing: string[] }> {
    const found = new Map<string, T>();
    const seen = new Set<string>();
    const take = (raw: unknown): void => {
      const id = c.idOf(raw);
      if (id === undefined) {
        this.issues.push({ kind: c.kind, reason: `a JumpCloud ${c.kind} record without an id was skipped` });
        return;
      }
      if (!ids.has(id) || seen.has(id)) return;
      seen.add(id);
      const parsed = c.schema.safeParse(raw);
      if (parsed.success) found.set(id, parsed.data);
      else this.issues.push({ objectId: id, kind: c.kind, reason: `skipped, JumpCloud's record is malformed: ${explain(parsed.error)}` });
    };
    if (ids.size === 0) return { found, missing: [] };

    const first = await c.page(0);
    first.items.forEach(take);
    const pagesLeft = first.total === undefined ? Infinity : Math.ceil(Math.max(0, first.total - first.items.length) / PAGE_SIZE);
    if (first.items.length === PAGE_SIZE && ids.size - seen.size > pagesLeft) {
      const takeAll = (items: unknown[]): never[] => {
        items.forEach(take);
        return [];
      };
      await readAfter(first, c.page, takeAll, c.what, this.config.maxPages);
    }
    const unseen = [...ids].filter((id) => !seen.has(id));
    (await Promise.all(unseen.map((id) => c.one(id)))).forEach((raw) => raw !== undefined && take(raw));
    return { found, missing: unseen.filter((id) => !seen.has(id)) };
  }

  private users(): Collection<DirectoryUser> {
    const fields = SYSTEM_USER_FIELDS;
    return {
      kind: 'user',
      what: 'users',
      // v1 skip paging needs a unique sort key, or records repeat and go missing between pages.
      page: async (skip) => {
        const { data } = await this.get('/systemusers', { limit: PAGE_SIZE, skip, sort: '_id', fields }, this.signal);
        const page = parsePage(systemUserListSchema, data, 'GET /systemusers');
        return { items: page.results, total: page.totalCount };
      },
      one: (id) => this.getOrUndefined(`/systemusers/${encodeURIComponent(id)}`, { fields }),
      idOf: (raw) => idOfSystemUser.safeParse(raw).data?._id,
      schema: systemUserSchema.transform(toDirectoryUser),
    };
  }

  private groups(): Collection<z.output<typeof userGroupSchema>> {
    return {
      kind: 'group',
      what: 'user groups',
      // No unique sort key is documented for v2 user groups; the by-id fallback covers what skip paging misses.
      page: async (skip) => {
        const { data, total } = await this.get('/v2/usergroups', { limit: PAGE_SIZE, skip, fields: 'id name' }, this.signal);
        return { items: parsePage(v2ListSchema, data, 'GET /v2/usergroups'), ...(total !== undefined ? { total } : {}) };
      },
      one: (id) => this.getOrUndefined(`/v2/usergroups/${encodeURIComponent(id)}`, {}),
      idOf: (raw) => idOfUserGroup.safeParse(raw).data?.id,
      schema: userGroupSchema,
    };
  }

  private async getOrUndefined(path: string, params: Record<string, string>): Promise<unknown> {
    try {
      return (await this.get(path, params, this.signal)).data;
    } catch (err) {
      if (err instanceof SyncError && err.failureClass === 'not-found') return undefined;
      throw err;
    }
  }
}

/**
 * Inactive unless JumpCloud would let the user sign in: suspended, an expired password (JumpCloud
 * suspends for that too) and state SUSPENDED all deactivate, and so does STAGED, a user who has
 * not been activated yet. A locked account (too many failed logins) is temporary and stays active.
 */
function toDirectoryUser(user: SystemUser): DirectoryUser {
  const active = !user.suspended && !user.password_expired && user.state !== 'SUSPENDED' && user.state !== 'STAGED';
  return {
    id: user._id,
    ...(user.email !== undefined ? { email: user.email } : {}),
    ...(user.displayname !== undefined ? { displayName: user.displayname } : {}),
    ...(user.firstname !== undefined ? { givenName: user.firstname } : {}),
    ...(user.lastname !== undefined ? { familyName: user.lastname } : {}),
    active,
  };
}

/** "Test connection": one small page of users, then the groups in scope. Reads only; never throws for a failed check. */
async function checkConnection(get: Get, config: JumpcloudSourceConfig): Promise<ConnectionCheck> {
  const checks: ConnectionCheck['checks'] = [];
  const attempt = async (name: string, run: () => Promise<string>): Promise<boolean> => {
    try {
      checks.push({ name, ok: true, detail: await run() });
      return true;
    } catch (err) {
      const known = err instanceof SyncError || err instanceof SourceReadError;
      checks.push({ name, ok: false, detail: known ? err.message : `unexpected failure: ${err instanceof Error ? err.message : String(err)}` });
      return false;
    }
  };

  const signedIn = await attempt('read users', async () => {
    const { data } = await get('/systemusers', { limit: 1, skip: 0, sort: '_id', fields: '_id' });
    const page = parsePage(systemUserListSchema, data, 'GET /systemusers');
    return `API key accepted${config.orgId ? ` for organisation ${config.orgId}` : ''}; the directory holds ${page.totalCount} users`;
  });
  if (signedIn) {
    const { scope } = config;
    if (scope.mode === 'application') {
      const path = `/v2/applications/${encodeURIComponent(scope.applicationId)}/usergroups`;
      await attempt('read user groups bound to the application', async () => {
        const { data, total } = await get(path, { limit: PAGE_SIZE, skip: 0 });
        const bound = parsePage(v2ListSchema, data, `GET ${path}`).filter((raw) => {
          const parsed = graphObjectWithPathsSchema.safeParse(raw);
          return parsed.success && parsed.data.type === 'user_group' && parsed.data.paths.some((p) => p.length === 1);
        });
        const more = total !== undefined && total > PAGE_SIZE ? ` among the first ${PAGE_SIZE} of ${total}` : '';
        if (bound.length > 0) return `${bound.length} user group(s) bound directly to application ${scope.applicationId}${more}`;
        return scope.includeDirectUserBindings
          ? `no user group is bound directly to application ${scope.applicationId}${more}; only users bound to it directly will be synced`
          : `no user group is bound directly to application ${scope.applicationId}${more}: nothing is in scope (bind the user groups to sync, or set includeDirectUserBindings)`;
      });
    } else {
      for (const id of new Set(scope.groupIds)) {
        await attempt(`read user group ${id}`, async () => {
          const { data } = await get(`/v2/usergroups/${encodeURIComponent(id)}`, {});
          return `found "${parsePage(userGroupSchema, data, `GET /v2/usergroups/${id}`).name}"`;
        });
      }
    }
  }
  return { ok: checks.every((c) => c.ok), checks };
}
