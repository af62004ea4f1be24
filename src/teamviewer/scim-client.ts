import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { z } from 'zod';
import { SyncError } from '../model/failure.js';
import {
  SCIM_GROUP_SCHEMA,
  SCIM_PATCH_SCHEMA,
  SCIM_USER_SCHEMA,
  SSO_USER_SCHEMA,
  type NewTvUser,
  type TvGroup,
  type TvUser,
  type TvUserChanges,
} from '../model/teamviewer.js';
import { classifyHttpFailure, isEndpointUnavailable, scimErrorSummary } from './errors.js';
import { registerSecret } from '../net/secrets.js';
import type { TeamViewerPort, TokenOwner } from './port.js';
import type { ResponseInfo } from '../net/response-info.js';
import { payloadReason } from '../net/payload.js';
import { MAX_RESPONSE_BYTES } from '../net/request-limits.js';
import { startRequestSpan } from '../net/request-span.js';
import { type ExchangeAgents, type ExchangeAnswer, ExchangeError, exchange, keepAliveAgents } from '../net/http-exchange.js';
import type { RequestSlot } from '../net/request-rate.js';
import { DEFAULT_BACKOFF, backoffDelay } from '../net/retry.js';
import { listResponseSchema, quickListPage, quickScimUser, scimGroupSchema, scimUserSchema, toTvGroup, toTvUser, webApiAccountSchema } from './wire.js';

export interface ScimClientOptions {
  /** e.g. https://webapi.teamviewer.com/scim/v2 */
  baseUrl: string;
  /** TeamViewer Web API v1; default: baseUrl with /scim/v2 replaced by /api/v1. */
  webApiBaseUrl?: string;
  token: string;
  /** Deadline of a whole request, answer body included. Default 30000. */
  timeoutMs?: number;
  /** Items asked for per list page; the server may send fewer, and its own page size is then followed. Default 1000. */
  pageSize?: number;
  /** Pages of one list read at once, once the first page has given the total. Default 1. */
  readConcurrency?: number;
  /** Every list page passes through it, the first one included: the sync's request rate. Default: none. */
  pageSlot?: RequestSlot;
  /** Called for every answer; `path` is the route template (e.g. /Users/{id}), fit for a metric label. */
  onResponse?: (info: ResponseInfo) => void;
}

type Method = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';

interface Call {
  method: Method;
  /** Concrete path below the base URL, without query. */
  path: string;
  /** Path template for metrics. */
  route: string;
  api?: 'scim' | 'web';
  query?: Record<string, string | number>;
  body?: unknown;
  signal?: AbortSignal;
}

interface Answer {
  status: number;
  body: unknown;
  headers: Record<string, unknown>;
}

/** No TeamViewer company comes near this; reaching it means the server's paging is broken. */
const MAX_LIST_ITEMS = 1_000_000;
/** Tries of one later page of a list answered 429, before the whole read gives up and is retried. */
const PAGE_RATE_LIMIT_ATTEMPTS = 5;

/** Quotes a value for a SCIM filter: backslash and double quote are escaped. */
export function scimFilterString(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/**
 * A DELETE must name one object: `DELETE /api/v1/users` without an id deletes the whole company.
 * So a DELETE whose path is a bare collection (one segment), or whose last segment is empty, is
 * refused before any byte leaves; only paths below an object (`/Groups/{id}`, `/usergroups/{id}/members`) go out.
 */
export function refuseCollectionDelete(method: string, path: string): void {
  if (method.toUpperCase() !== 'DELETE') return;
  const raw = path.split('?')[0] ?? '';
  const segments = raw.split('/').slice(1);
  // A dot segment or a fragment would make the URL resolve to the collection itself (`/users/%2e` → `/users/`).
  const plain = (s: string) => {
    const decoded = decodeURIComponentSafe(s).trim();
    return decoded !== '' && decoded !== '.' && decoded !== '..' && !/[#?/\\]/.test(decoded) && !s.includes('#');
  };
  const named = !path.includes('#') && segments.length >= 2 && segments.every(plain);
  if (!named) {
    throw new SyncError(
      'invalid',
      `refused: DELETE ${raw || '/'} names no single object (a DELETE on a collection can delete every object in it); nothing was sent`,
    );
  }
}

function decodeURIComponentSafe(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return '';
  }
}

/** One Web API v1 request, as a feature client (roles, licences, SSO) states it. */
export interface WebApiCall {
  method: Method;
  /** Below the Web API base, e.g. `/userroles/assign/usergroup`. */
  path: string;
  /** Path template for metrics, e.g. `/userroles/{id}`. */
  route: string;
  query?: Record<string, string | number>;
  body?: unknown;
  signal?: AbortSignal;
}

/** What feature clients of the Web API need of the transport: one checked call. */
export interface WebApiTransport {
  /**
   * Sends the call and parses the answer with `schema` when its status is in `ok`; a status in
   * `absent` gives undefined (a 404 for "not there"); anything else throws a classified SyncError.
   */
  webApi<S extends z.ZodType>(call: WebApiCall, expect: { ok: number[]; schema: S; what: string; absent?: number[] }): Promise<z.output<S> | undefined>;
}

function defaultWebApiBaseUrl(baseUrl: string): string {
  const trimmed = baseUrl.replace(/\/+$/, '');
  return /\/scim\/v2$/.test(trimmed) ? trimmed.replace(/\/scim\/v2$/, '/api/v1') : `${new URL(trimmed).origin}/api/v1`;
}

function queryString(query: Record<string, string | number> | undefined): string {
  if (!query) return '';
  // Built by hand so spaces in filters go out as %20, not as the `+` form encoding.
  const parts = Object.entries(query).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
  return parts.length === 0 ? '' : `?${parts.join('&')}`;
}

function decodeBody(text: unknown): unknown {
  if (typeof text !== 'string') return text;
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function patchBody(operations: unknown[]): unknown {
  return { schemas: [SCIM_PATCH_SCHEMA], Operations: operations };
}

function memberRefs(memberIds: string[]): { value: string }[] {
  return memberIds.map((value) => ({ value }));
}

/** SCIM wants name parts; TeamViewer splits at the first space and leaves one-word names unsplit. */
function nameOf(displayName: string): { formatted: string; givenName?: string; familyName?: string } {
  const space = displayName.indexOf(' ');
  const givenName = space > 0 ? displayName.slice(0, space) : '';
  const familyName = space > 0 ? displayName.slice(space + 1).trim() : '';
  if (givenName === '' || familyName === '') return { formatted: displayName };
  return { formatted: displayName, givenName, familyName };
}

/**
 * TeamViewer's SCIM v2 API. Users follow TeamViewer's published contract. /Groups has no published
 * contract at all: the group calls use the RFC 7644 forms the IdPs' own TeamViewer apps send, accept
 * 200 or 204 where either is plausible, and read missing `members` as none.
 *
 * Users are never deleted: TeamViewer's SCIM API cannot, so there is deliberately no such method.
 * Every failure is thrown as a classified SyncError; no HTTP library error (which would carry the
 * token in its request headers) leaves this class.
 */
export class TeamViewerScimClient implements TeamViewerPort, WebApiTransport {
  // Node's own keep-alive agents, without an HTTP library on top: a cycle sends thousands of small
  // requests to one host, and the library's per-request work cost more CPU than the request itself.
  // Through the environment's proxy (HTTPS_PROXY, NO_PROXY) when it names one for TeamViewer.
  private readonly agents: ExchangeAgents;
  private readonly headers: Record<string, string>;
  private readonly baseUrl: string;
  private readonly webApiBaseUrl: string;
  private readonly pageSize: number;
  private readonly readConcurrency: number;
  private readonly pageSlot: RequestSlot;
  private readonly onResponse: ScimClientOptions['onResponse'];
  private readonly timeoutMs: number;

  constructor(options: ScimClientOptions) {
    const pageSize = options.pageSize ?? 1000;
    if (!Number.isInteger(pageSize) || pageSize < 1) throw new RangeError('pageSize must be a positive integer');
    this.pageSize = pageSize;
    const readConcurrency = options.readConcurrency ?? 1;
    if (!Number.isInteger(readConcurrency) || readConcurrency < 1) throw new RangeError('readConcurrency must be a positive integer');
    this.readConcurrency = readConcurrency;
    this.pageSlot = options.pageSlot ?? ((task) => task());
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.agents = keepAliveAgents(this.baseUrl);
    this.webApiBaseUrl = (options.webApiBaseUrl ?? defaultWebApiBaseUrl(options.baseUrl)).replace(/\/+$/, '');
    this.onResponse = options.onResponse;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    registerSecret(options.token);
    this.headers = {
      Authorization: `Bearer ${options.token}`,
      'Content-Type': 'application/scim+json',
      Accept: 'application/scim+json, application/json',
      'User-Agent': 'tvsync',
    };
  }

  // ---- users ----

  async listUsers(opts: { signal?: AbortSignal } = {}): Promise<TvUser[]> {
    const users = await this.listAll('/Users', scimUserSchema, undefined, opts.signal, quickScimUser);
    return users.map(toTvUser);
  }

  async getUser(id: string): Promise<TvUser | undefined> {
    const call: Call = { method: 'GET', path: `/Users/${encodeURIComponent(id)}`, route: '/Users/{id}' };
    const answer = await this.send(call);
    if (answer.status === 404) return undefined;
    return toTvUser(this.expect(call, answer, [200], scimUserSchema, 'a SCIM User'));
  }

  /**
   * Filters match case-sensitively at TeamViewer, so the exact address is tried, then its composed
   * (NFC) form, then their lower case: one address typed two ways is still one user.
   */
  async findUserByEmail(email: string): Promise<TvUser | undefined> {
    const composed = email.normalize('NFC');
    const candidates = [...new Set([email, composed, email.toLowerCase(), composed.toLowerCase()])];
    const key = composed.toLowerCase();
    for (const value of candidates) {
      const users = await this.listAll('/Users', scimUserSchema, `userName eq ${scimFilterString(value)}`, undefined, quickScimUser);
      // The filter is not trusted blindly: a server that ignored it would hand back anyone.
      const match = users.find((u) => u.userName.normalize('NFC').toLowerCase() === key);
      if (match) return toTvUser(match);
    }
    return undefined;
  }

  async createUser(user: NewTvUser): Promise<TvUser> {
    const sso = user.ssoCustomerId !== undefined;
    const body = {
      schemas: sso ? [SCIM_USER_SCHEMA, SSO_USER_SCHEMA] : [SCIM_USER_SCHEMA],
      userName: user.userName,
      displayName: user.displayName,
      emails: [{ value: user.userName, primary: true }],
      name: nameOf(user.displayName),
      active: user.active,
      ...(user.preferredLanguage !== undefined ? { preferredLanguage: user.preferredLanguage } : {}),
      ...(sso ? { [SSO_USER_SCHEMA]: { ssoCustomerId: user.ssoCustomerId } } : {}),
    };
    const call: Call = { method: 'POST', path: '/Users', route: '/Users', body };
    const created = toTvUser(this.expect(call, await this.send(call), [201, 200], scimUserSchema, 'a SCIM User'));
    // Linking the IdP user to whoever the answer names would let a later cycle deactivate the wrong person.
    if (created.userName.normalize('NFC').toLowerCase() !== user.userName.normalize('NFC').toLowerCase()) {
      this.unexpectedBody(call, 201, `the user asked for (it names ${created.userName})`, true);
    }
    return created;
  }

  /** TeamViewer supports only `replace`; one operation per changed attribute. */
  async updateUser(id: string, changes: TvUserChanges): Promise<TvUser> {
    const operations: { op: 'replace'; path: string; value: string | boolean }[] = [];
    if (changes.displayName !== undefined) operations.push({ op: 'replace', path: 'displayName', value: changes.displayName });
    if (changes.active !== undefined) operations.push({ op: 'replace', path: 'active', value: changes.active });
    if (operations.length === 0) throw new Error(`updateUser(${id}) called without any change`);
    const call: Call = {
      method: 'PATCH',
      path: `/Users/${encodeURIComponent(id)}`,
      route: '/Users/{id}',
      body: patchBody(operations),
    };
    const updated = toTvUser(this.expect(call, await this.send(call), [200], scimUserSchema, 'a SCIM User'));
    if (updated.id !== id || (changes.active !== undefined && updated.active !== changes.active)) {
      this.unexpectedBody(call, 200, `the user as changed (it names ${updated.id}, active ${updated.active})`, true);
    }
    return updated;
  }

  deactivateUser(id: string): Promise<TvUser> {
    return this.updateUser(id, { active: false });
  }

  reactivateUser(id: string): Promise<TvUser> {
    return this.updateUser(id, { active: true });
  }

  /**
   * One page of the user list and the company's user count, without reading the other pages: a
   * cheap look for the connection check. Not a list read: nothing here is complete.
   */
  async userPage(opts: { startIndex?: number; count: number }): Promise<{ totalResults: number; users: TvUser[] }> {
    const query = { startIndex: opts.startIndex ?? 1, count: opts.count };
    const call: Call = { method: 'GET', path: '/Users', route: '/Users', query };
    const page = this.expect(call, await this.send(call), [200], listResponseSchema(scimUserSchema), 'a SCIM ListResponse');
    return { totalResults: page.totalResults, users: (page.Resources ?? []).map(toTvUser) };
  }

  /**
   * The account the script token belongs to (Web API v1), so the sync never locks itself out.
   * Undefined when the token may not read account data (403/404).
   */
  async getTokenOwner(opts: { signal?: AbortSignal } = {}): Promise<TokenOwner | undefined> {
    const call: Call = { method: 'GET', path: '/account', route: '/account', api: 'web', ...(opts.signal ? { signal: opts.signal } : {}) };
    const answer = await this.send(call);
    if (answer.status === 403 || answer.status === 404) return undefined;
    const account = this.expect(call, answer, [200], webApiAccountSchema, 'a Web API account');
    return {
      email: account.email,
      ...(account.userid !== undefined ? { id: account.userid } : {}),
      ...(account.name !== undefined ? { name: account.name } : {}),
    };
  }

  async webApi<S extends z.ZodType>(call: WebApiCall, expect: { ok: number[]; schema: S; what: string; absent?: number[] }): Promise<z.output<S> | undefined> {
    const full: Call = { ...call, api: 'web' };
    const answer = await this.send(full);
    if (expect.absent?.includes(answer.status)) return undefined;
    return this.expect(full, answer, expect.ok, expect.schema, expect.what);
  }

  // ---- groups (undocumented contract, see the class comment) ----

  async listGroups(opts: { signal?: AbortSignal } = {}): Promise<TvGroup[]> {
    const groups = await this.listAll('/Groups', scimGroupSchema, undefined, opts.signal);
    return groups.map(toTvGroup);
  }

  async findGroupByName(name: string): Promise<TvGroup | undefined> {
    const groups = await this.listAll('/Groups', scimGroupSchema, `displayName eq ${scimFilterString(name)}`);
    const match = groups.find((g) => g.displayName === name);
    return match && toTvGroup(match);
  }

  async createGroup(displayName: string, memberIds: string[]): Promise<TvGroup> {
    const body = {
      schemas: [SCIM_GROUP_SCHEMA],
      displayName,
      ...(memberIds.length > 0 ? { members: memberRefs(memberIds) } : {}),
    };
    const call: Call = { method: 'POST', path: '/Groups', route: '/Groups', body };
    const created = this.expect(call, await this.send(call), [201, 200], scimGroupSchema, 'a SCIM Group');
    // A server that does not echo members still holds the ones just sent.
    return { ...toTvGroup(created), ...(created.members == null ? { memberIds: [...memberIds] } : {}) };
  }

  async renameGroup(id: string, displayName: string): Promise<void> {
    await this.patchGroup(id, [{ op: 'replace', path: 'displayName', value: displayName }]);
  }

  /** One request for all ids given; the caller decides the batch size. */
  async addGroupMembers(id: string, memberIds: string[]): Promise<void> {
    if (memberIds.length === 0) throw new Error(`addGroupMembers(${id}) called without members`);
    await this.patchGroup(id, [{ op: 'add', path: 'members', value: memberRefs(memberIds) }]);
  }

  /** One request for all ids given, one remove operation per member. */
  async removeGroupMembers(id: string, memberIds: string[]): Promise<void> {
    if (memberIds.length === 0) throw new Error(`removeGroupMembers(${id}) called without members`);
    await this.patchGroup(
      id,
      memberIds.map((member) => ({ op: 'remove', path: `members[value eq ${scimFilterString(member)}]` })),
    );
  }

  /** A group that is already gone counts as deleted. */
  async deleteGroup(id: string): Promise<void> {
    const call: Call = { method: 'DELETE', path: `/Groups/${encodeURIComponent(id)}`, route: '/Groups/{id}' };
    const answer = await this.send(call);
    if (answer.status === 204 || answer.status === 404) return;
    if (answer.status === 200) return this.refuseErrorBody(call, answer);
    throw this.fail(call, answer);
  }

  private async patchGroup(id: string, operations: unknown[]): Promise<void> {
    const call: Call = {
      method: 'PATCH',
      path: `/Groups/${encodeURIComponent(id)}`,
      route: '/Groups/{id}',
      body: patchBody(operations),
    };
    const answer = await this.send(call);
    // The answer's body is not needed (the caller knows what it asked for), unless it is an error.
    if (answer.status !== 200 && answer.status !== 204) throw this.fail(call, answer);
    if (answer.status === 200) this.refuseErrorBody(call, answer);
  }

  /** A 200 that carries a SCIM error did not do what it says: retried, as it may have been applied. */
  private refuseErrorBody(call: Call, answer: Answer): void {
    const said = scimErrorSummary(answer.body);
    if (said !== undefined) this.unexpectedBody(call, answer.status, `a success (it is a SCIM error: ${said})`, true);
  }

  // ---- plumbing ----

  /**
   * Reads every page: an explicit count and startIndex on each request (the echoed startIndex is
   * unreliable). The first page gives totalResults and the server's own page size (what it sent,
   * whatever was asked); the other pages are then read `readConcurrency` at a time, each asked for
   * exactly the positions it covers. A page shorter than asked while totalResults says more remain
   * is read as a server-side cap: the positions it left out are asked for again, never skipped.
   *
   * Nothing in the answer is taken on faith: totalResults must be the same on every page; an empty
   * page before totalResults is reached, items past totalResults, a position that comes back as two
   * different items and an item at two positions are failures (transient: the list is read again),
   * never an early end. A list read either is whole, in TeamViewer's order, or throws.
   */
  private async listAll<S extends z.ZodType<{ id: string }>>(
    route: '/Users' | '/Groups',
    item: S,
    filter: string | undefined,
    signal?: AbortSignal,
    /** The item's hand check (see quickListPage): absent, every page goes through the schema. */
    quickItem?: (value: unknown) => z.output<S> | undefined,
  ): Promise<z.output<S>[]> {
    const pageSchema = listResponseSchema(item);
    const quick = quickItem && ((body: unknown) => quickListPage(body, quickItem));
    const doubtful = (what: string) =>
      new SyncError('transient', `GET ${route} → 200 but ${what}; the list is read again, nothing is changed on its account.`, { status: 200 });
    const read = (startIndex: number, count: number, pageSignal: AbortSignal | undefined, rateLimitAttempts: number) =>
      this.readPage({
        route,
        schema: pageSchema,
        filter,
        startIndex,
        count,
        rateLimitAttempts,
        ...(quick ? { quick } : {}),
        ...(pageSignal ? { signal: pageSignal } : {}),
      });

    const first = await read(1, this.pageSize, signal, 1);
    const total = first.totalResults;
    if (total > MAX_LIST_ITEMS) {
      throw new SyncError(
        'invalid',
        `GET ${route} → totalResults ${total} is more than ${MAX_LIST_ITEMS}; the server's paging looks broken, reading stopped.`,
        {
          status: 200,
        },
      );
    }
    const slots: (z.output<S> | undefined)[] = new Array(total);
    const positionOf = new Map<string, number>();
    let filled = 0;
    /** Puts a page's items at their positions; returns how many it sent. */
    const place = (startIndex: number, page: { totalResults: number; Resources?: z.output<S>[] | null | undefined }): number => {
      if (page.totalResults !== total) {
        throw doubtful(`totalResults changed from ${total} to ${page.totalResults} while the list was read (page at startIndex ${startIndex})`);
      }
      const resources = page.Resources ?? [];
      if (resources.length === 0 && filled < total) {
        throw doubtful(`the page at startIndex ${startIndex} is empty while totalResults says ${total - filled} more remain`);
      }
      if (startIndex - 1 + resources.length > total) {
        throw doubtful(`the page at startIndex ${startIndex} sent ${resources.length} items, more than totalResults (${total}) leaves room for`);
      }
      let repeated = 0;
      resources.forEach((resource, i) => {
        const position = startIndex + i;
        const held = slots[position - 1];
        if (held !== undefined) {
          // Two pages may overlap when the server's page size varies; they must agree where they do.
          if (held.id !== resource.id) throw doubtful(`position ${position} came back as ${held.id} and as ${resource.id}: the list changed while it was read`);
          return;
        }
        const elsewhere = positionOf.get(resource.id);
        if (elsewhere !== undefined) {
          repeated++;
          if (repeated < resources.length) return;
          throw new SyncError(
            'invalid',
            `GET ${route} → the page at startIndex ${startIndex} repeats items already received: TeamViewer ` +
              'seems to ignore startIndex, so the list cannot be read completely. Try a larger pageSize.',
            { status: 200 },
          );
        }
        slots[position - 1] = resource;
        positionOf.set(resource.id, position);
        filled++;
      });
      if (repeated > 0) {
        const twice = resources.find((r, i) => positionOf.get(r.id) !== startIndex + i);
        throw doubtful(`${twice?.id ?? 'an item'} came at two positions: the list changed while it was read (page at startIndex ${startIndex})`);
      }
      return resources.length;
    };

    const stride = place(1, first);
    if (filled === total) return slots as z.output<S>[];
    // The positions still wanted, as [first, end) ranges; a short page adds the rest of its range back.
    const ranges: [number, number][] = [];
    for (let start = 1 + stride; start <= total; start += stride) ranges.push([start, Math.min(start + stride, total + 1)]);
    const stop = new AbortController();
    const pageSignal = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal;
    // Every page in flight listens to it; that many listeners are expected, not a leak.
    setMaxListeners(this.readConcurrency + 10, pageSignal);
    let failure: { err: unknown } | undefined;
    await new Promise<void>((resolve) => {
      let next = 0;
      let active = 0;
      const pump = () => {
        while (!failure && active < this.readConcurrency && next < ranges.length) {
          const [start, end] = ranges[next++] as [number, number];
          active++;
          read(start, end - start, pageSignal, PAGE_RATE_LIMIT_ATTEMPTS)
            .then((page) => {
              // What a short page left out is asked for again, from its first position nobody sent yet.
              let from = start + place(start, page);
              while (from < end && slots[from - 1] !== undefined) from++;
              if (from < end) ranges.push([from, end]);
            })
            .catch((err: unknown) => {
              if (failure) return;
              failure = { err };
              stop.abort();
            })
            .finally(() => {
              active--;
              if (active === 0 && (failure || next >= ranges.length)) resolve();
              else pump();
            });
        }
      };
      pump();
      if (active === 0) resolve();
    });
    if (failure) throw failure.err;
    if (filled !== total) throw doubtful(`only ${filled} of totalResults ${total} items arrived`);
    return slots as z.output<S>[];
  }

  /**
   * One page of a list, through the page slot. A later page answered 429 waits as told and is asked
   * again (up to `rateLimitAttempts` tries): starting the whole read over would throw away the pages
   * already read. Any other failure is the caller's.
   */
  private async readPage<S extends z.ZodType>(page: {
    route: '/Users' | '/Groups';
    schema: S;
    filter: string | undefined;
    startIndex: number;
    count: number;
    rateLimitAttempts: number;
    quick?: (body: unknown) => z.output<S> | undefined;
    signal?: AbortSignal;
  }): Promise<z.output<S>> {
    const query = { ...(page.filter !== undefined ? { filter: page.filter } : {}), startIndex: page.startIndex, count: page.count };
    const call: Call = { method: 'GET', path: page.route, route: page.route, query, ...(page.signal ? { signal: page.signal } : {}) };
    for (let attempt = 1; ; attempt++) {
      try {
        return this.expect(call, await this.pageSlot(() => this.send(call)), [200], page.schema, 'a SCIM ListResponse', page.quick);
      } catch (err) {
        if (!(err instanceof SyncError) || err.failureClass !== 'rate-limited' || attempt >= page.rateLimitAttempts) throw err;
        const wait = err.retryAfterMs ?? backoffDelay(attempt - 1, DEFAULT_BACKOFF);
        if (wait > (DEFAULT_BACKOFF.maxWaitMs ?? 0)) throw err;
        await sleep(wait, undefined, page.signal ? { signal: page.signal } : undefined).catch(() => {
          throw page.signal?.reason ?? err;
        });
      }
    }
  }

  /**
   * Checks the status and parses the body; any other status becomes a classified SyncError. A body
   * that is not what the call must return (a 200 carrying a SCIM error, HTML from a proxy, a cut
   * JSON) is transient: retried, and a read that keeps getting it fails without writing. A write
   * that got such an answer may have taken effect, so its retry looks before it writes again.
   */
  private expect<S extends z.ZodType>(
    call: Call,
    answer: Answer,
    ok: number[],
    schema: S,
    what: string,
    quick?: (body: unknown) => z.output<S> | undefined,
  ): z.output<S> {
    if (!ok.includes(answer.status)) throw this.fail(call, answer);
    const checked = quick?.(answer.body);
    if (checked !== undefined) return checked;
    const parsed = schema.safeParse(answer.body);
    if (parsed.success) return parsed.data;
    const where = payloadReason(parsed.error, { root: 'body' });
    const said = scimErrorSummary(answer.body);
    const error = said === undefined ? '' : `; it is a SCIM error: ${said}`;
    const write = call.method !== 'GET';
    return this.unexpectedBody(call, answer.status, `${what} (${where})${error}`, write);
  }

  private unexpectedBody(call: Call, status: number, what: string, write: boolean): never {
    throw new SyncError(
      'transient',
      `${call.method} ${call.path} → ${status} but the body is not ${what}. ` +
        (write ? 'The change may have been applied; it is retried after a look-up.' : 'Nothing is taken from this answer; the read is retried.'),
      { status, maybeApplied: write },
    );
  }

  private fail(call: Call, answer: Answer): SyncError {
    const err = classifyHttpFailure({
      method: call.method,
      path: call.path,
      status: answer.status,
      body: answer.body,
      headers: answer.headers,
    });
    if (!isEndpointUnavailable(err, call.path)) return err;
    return new SyncError(
      'unavailable',
      `${call.method} ${call.path} → ${answer.status} unavailable: TeamViewer does not offer ${call.method} ` +
        `${call.route} over SCIM for this company (user groups need a Tensor licence and a token allowed to manage ` +
        'user groups); groups cannot be synced this way.',
      { status: answer.status },
    );
  }

  private async send(call: Call): Promise<Answer> {
    refuseCollectionDelete(call.method, call.path);
    const started = performance.now();
    const base = call.api === 'web' ? this.webApiBaseUrl : this.baseUrl;
    const span = startRequestSpan(call.api === 'web' ? 'teamviewer-web-api' : 'teamviewer-scim', call.method, call.route, this.baseUrl);
    let response: ExchangeAnswer;
    try {
      // The deadline bounds the whole exchange (a body trickling a byte a second ends too); the
      // caller's signal can end it sooner.
      response = await exchange(this.agents, {
        method: call.method,
        url: new URL(`${base}${call.path}${queryString(call.query)}`),
        // The Web API speaks plain JSON; SCIM its own media type.
        headers: call.api === 'web' ? { ...this.headers, 'Content-Type': 'application/json', Accept: 'application/json' } : this.headers,
        ...(call.body !== undefined ? { body: JSON.stringify(call.body) } : {}),
        ...(call.signal ? { signal: call.signal } : {}),
        deadlineMs: this.timeoutMs,
        maxBytes: MAX_RESPONSE_BYTES,
        idleMs: this.timeoutMs,
      });
    } catch (err) {
      // A caller's abort is not a TeamViewer failure: surface the caller's own reason.
      if (call.signal?.aborted) {
        span.end({ code: 'ABORTED' });
        throw call.signal.reason;
      }
      // Only the code travels on: nothing of the request (and so of the token) leaves.
      const code = err instanceof ExchangeError ? err.code : 'ERR_NETWORK';
      span.end({ code });
      throw classifyHttpFailure({ method: call.method, path: call.path, code });
    }
    span.end({ status: response.status });
    this.onResponse?.({
      method: call.method,
      path: call.route,
      status: response.status,
      ms: Math.round(performance.now() - started),
    });
    return { status: response.status, body: decodeBody(response.text), headers: response.headers };
  }
}
