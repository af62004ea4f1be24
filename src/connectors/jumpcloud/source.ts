import type { Logger } from 'pino';
import type { z } from 'zod';
import type { DirectoryGroup, DirectoryIssue, DirectoryRead, DirectoryUser } from '../../model/directory.js';
import { SyncError } from '../../model/failure.js';
import { outsideText } from '../../net/secrets.js';
import { SourceReadError, type ConnectionCheck, type DirectorySource, type ReadOptions, type SourceDeps } from '../source.js';
import type { ChangeFeed } from '../changes.js';
import { createClient, createInsightsClient, readAfter, type FetchPage, type Get } from './client.js';
import { createInsightsFeed } from './insights.js';
import { lookupUser } from './lookup.js';
import type { JumpcloudSourceConfig } from './config.js';
import {
  PAGE_SIZE,
  SYSTEM_USER_FIELDS,
  explain,
  graphConnectionSchema,
  graphObjectWithPathsSchema,
  idOfSystemUser,
  idOfUserGroup,
  parsePage,
  systemUserListSchema,
  systemUserSchema,
  toDirectoryUser,
  userGroupSchema,
  v2ListSchema,
} from './wire.js';

/**
 * JumpCloud as a source: user groups (bound to the TeamViewer application, or listed) and their
 * users, over JumpCloud's REST API (v1 for user attributes, v2 for groups and the graph). As in
 * JumpCloud's own identity management, the users in scope are the members of those groups; users
 * bound to the application directly only when `includeDirectUserBindings` says so.
 * JumpCloud has no delta API, so every read is a full one; between reads, the fast lane polls
 * Directory Insights (insights.ts) and re-reads one person at a time (lookup.ts).
 */

/** `state` holds only the Directory Insights position. */
export type JumpcloudSourceDeps = SourceDeps;

export function createJumpcloudSource(config: JumpcloudSourceConfig, deps: JumpcloudSourceDeps): DirectorySource {
  const get = createClient(config, deps);
  let insights: ChangeFeed | undefined;
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
    async readUser(ref, opts = {}) {
      const stop = new AbortController();
      const signal = opts.signal ? AbortSignal.any([opts.signal, stop.signal]) : stop.signal;
      try {
        return await lookupUser(get, config, ref, signal);
      } catch (err) {
        stop.abort();
        throw asReadError(err);
      }
    },
    async changeFeed() {
      if (!config.changes.insights.enabled) return undefined;
      insights ??= createInsightsFeed(config, { post: createInsightsClient(config, deps), state: deps.state, log: deps.log, now: deps.now ?? Date.now });
      return insights;
    },
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

function asReadError(err: unknown): SourceReadError {
  if (err instanceof SourceReadError) return err;
  if (err instanceof SyncError) return new SourceReadError(`JumpCloud read failed: ${err.message}`, err);
  return new SourceReadError(`JumpCloud read failed: ${outsideText(err instanceof Error ? err.message : String(err), 500)}`, err);
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
        ? await Promise.all([this.boundGroupIds(scope.applicationId), scope.includeDirectUserBindings ? this.directlyBoundUserIds(scope.applicationId) : []])
        : [[...new Set(scope.groupIds)], []];

    const [members, groupLookup] = await Promise.all([Promise.all(groupIds.map((id) => this.memberIds(id))), this.lookup(new Set(groupIds), this.groups())]);
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
      } else if (parsed.data.type === 'user') return parsed.data.id;
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
    for (const raw of await Promise.all(unseen.map((id) => c.one(id)))) if (raw !== undefined) take(raw);
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
