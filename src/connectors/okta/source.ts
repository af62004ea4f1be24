import type { Logger } from 'pino';
import { z } from 'zod';
import type { DirectoryGroup, DirectoryGroupRef, DirectoryRead, DirectoryUser, UserLookup } from '../../model/directory.js';
import { SyncError } from '../../model/failure.js';
import { mapLimited } from '../../net/limiter.js';
import { payloadReason } from '../../net/payload.js';
import { DEFAULT_BACKOFF, type BackoffPolicy } from '../../net/retry.js';
import { outsideText, registerSecret } from '../../net/secrets.js';
import type { ChangeFeed, HookReceiver } from '../changes.js';
import { SourceReadError, type ConnectionCheck, type DirectorySource, type ReadOptions, type SourceDeps, type SourceStateStore } from '../source.js';
import { OktaApi, isAbort, type ReadContext } from './client.js';
import type { OktaSourceConfig } from './config.js';
import { createOktaHookReceiver } from './event-hook.js';
import type { EventScope } from './events.js';
import { OktaSystemLogFeed } from './system-log.js';
import { SNAPSHOT_KEY, WATERMARK_OVERLAP_MS, snapshotSchema, type Snapshot } from './snapshot.js';
import {
  idOf,
  oktaAppAssignmentSchema,
  oktaAppGroupSchema,
  oktaAppUserSchema,
  oktaGroupSchema,
  oktaIdSchema,
  oktaUserSchema,
  toDirectoryUser,
  type OktaUser,
} from './wire.js';

export type OktaSourceDeps = SourceDeps;

const APP_GROUPS_MIN_LIMIT = 20;
const LOGS_SCOPE = 'okta.logs.read';

/** Whether the System Log feed runs: as configured, else on where the credentials may read the log. */
function systemLogWanted(config: OktaSourceConfig): { on: boolean; refused?: string } {
  const auth = config.auth;
  const mayRead = auth.method === 'apiToken' || auth.scopes.includes(LOGS_SCOPE);
  const asked = config.changes.systemLog.enabled;
  if (asked === false) return { on: false };
  if (mayRead) return { on: true };
  if (asked === undefined) return { on: false };
  return {
    on: false,
    refused: `changes.systemLog is enabled but the service app's scopes do not include ${LOGS_SCOPE}: add and grant the scope, or set changes.systemLog.enabled: false; no System Log polling until then`,
  };
}

export function createOktaSource(config: OktaSourceConfig, deps: OktaSourceDeps): DirectorySource {
  return new OktaSource(config, deps);
}

/**
 * Okta as a source: the users and groups assigned to the TeamViewer app, or members of listed
 * groups. With incremental reads on (app scope), only users changed since the last read are
 * listed, on top of the snapshot that read left.
 */
class OktaSource implements DirectorySource {
  readonly kind = 'okta';
  private readonly api: OktaApi;
  private readonly state: SourceStateStore;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly backoff: BackoffPolicy;
  private readonly scope: OktaSourceConfig['scope'];
  private readonly scopeKey: string;
  /** App scope: the groups assigned to the app at the last full read, for telling which group events matter. */
  private appGroups: Set<string> | undefined;
  private readonly eventScope: EventScope;
  private feed: OktaSystemLogFeed | undefined;
  private receiver: HookReceiver | undefined;

  constructor(
    private readonly config: OktaSourceConfig,
    deps: OktaSourceDeps,
  ) {
    this.state = deps.state;
    this.log = deps.log.child({ source: 'okta' });
    this.now = deps.now ?? Date.now;
    this.backoff = deps.backoff ?? DEFAULT_BACKOFF;
    this.api = new OktaApi(config, this.log, this.backoff);
    this.scope = config.scope;
    this.scopeKey = JSON.stringify({ orgUrl: config.orgUrl, scope: config.scope, emailAttribute: config.emailAttribute });
    this.eventScope = { scope: config.scope, appGroupIds: () => this.appGroups };
  }

  /** A user record, or undefined after noting why it was skipped. */
  private parseUser(raw: unknown, ctx: ReadContext): DirectoryUser | undefined {
    const parsed = oktaUserSchema.safeParse(raw);
    if (parsed.success) return toDirectoryUser(parsed.data, this.config.emailAttribute);
    ctx.issues.push({ kind: 'user', objectId: idOf(raw), reason: `Okta user record skipped: ${payloadReason(parsed.error)}` });
    return undefined;
  }

  /** One group and its member ids; `member` turns a member record into an id (and may collect the user). */
  private async readGroup(id: string, embedded: unknown, member: (raw: unknown) => string | undefined, ctx: ReadContext): Promise<DirectoryGroup | undefined> {
    const path = `/api/v1/groups/${encodeURIComponent(id)}`;
    const record = oktaGroupSchema.safeParse(embedded ?? (await this.api.get(path, 'group', ctx)).body);
    const memberIds: string[] = [];
    for await (const page of this.api.pages(`${path}/users?limit=${this.config.pageSize}`, 'group-users', ctx)) {
      for (const raw of page) {
        const memberId = member(raw);
        if (memberId !== undefined) memberIds.push(memberId);
      }
    }
    if (record.success) return { id, name: record.data.profile.name, memberIds };
    ctx.issues.push({ kind: 'group', objectId: id, reason: `Okta group record skipped: ${payloadReason(record.error)}` });
    return undefined;
  }

  private memberIdOnly(groupId: string, ctx: ReadContext): (raw: unknown) => string | undefined {
    return (raw) => {
      const id = idOf(raw);
      if (id === undefined) ctx.issues.push({ kind: 'membership', objectId: groupId, reason: 'a member record of this Okta group has no id; skipped' });
      return id;
    };
  }

  private async readAppGroups(appId: string, ctx: ReadContext): Promise<(DirectoryGroup | undefined)[]> {
    const assigned: { id: string; group: unknown }[] = [];
    const limit = Math.max(APP_GROUPS_MIN_LIMIT, this.config.pageSize);
    for await (const page of this.api.pages(`/api/v1/apps/${appId}/groups?limit=${limit}&expand=group`, 'app-groups', ctx)) {
      for (const raw of page) {
        const parsed = oktaAppGroupSchema.safeParse(raw);
        if (parsed.success) assigned.push({ id: parsed.data.id, group: parsed.data._embedded?.group });
        else ctx.issues.push({ kind: 'group', objectId: idOf(raw), reason: `Okta group assignment skipped: ${payloadReason(parsed.error)}` });
      }
    }
    return mapLimited(assigned, this.config.concurrency, (a) => this.readGroup(a.id, a.group, this.memberIdOnly(a.id, ctx), ctx));
  }

  private async readAppUsersFull(appId: string, ctx: ReadContext): Promise<Map<string, DirectoryUser>> {
    const users = new Map<string, DirectoryUser>();
    for await (const page of this.api.pages(`/api/v1/apps/${appId}/users?limit=${this.config.pageSize}&expand=user`, 'app-users', ctx)) {
      for (const raw of page) {
        const parsed = oktaAppUserSchema.safeParse(raw);
        const embedded = parsed.success ? parsed.data._embedded?.user : undefined;
        if (embedded === undefined) {
          const reason = parsed.success ? 'the assignment came without its user' : payloadReason(parsed.error);
          ctx.issues.push({ kind: 'user', objectId: idOf(raw), reason: `Okta app assignment skipped: ${reason}` });
          continue;
        }
        const user = this.parseUser(embedded, ctx);
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
  private async readAppUsersIncremental(appId: string, snapshot: Snapshot, ctx: ReadContext): Promise<Map<string, DirectoryUser> | undefined> {
    const assigned: string[] = [];
    for await (const page of this.api.pages(`/api/v1/apps/${appId}/users?limit=${this.config.pageSize}`, 'app-users', ctx)) {
      for (const raw of page) {
        const parsed = oktaAppUserSchema.safeParse(raw);
        if (parsed.success) assigned.push(parsed.data.id);
        else ctx.issues.push({ kind: 'user', objectId: idOf(raw), reason: `Okta app assignment skipped: ${payloadReason(parsed.error)}` });
      }
    }
    const inScope = new Set(assigned);
    const changed = new Map<string, DirectoryUser | undefined>();
    const filter = encodeURIComponent(`lastUpdated gt "${snapshot.watermark}"`);
    for await (const page of this.api.pages(`/api/v1/users?limit=${this.config.pageSize}&filter=${filter}`, 'users', ctx)) {
      for (const raw of page) {
        const id = idOf(raw);
        if (id !== undefined && inScope.has(id)) changed.set(id, this.parseUser(raw, ctx));
      }
    }
    const previous = new Map(snapshot.users.map((user) => [user.id, user]));
    const unknown = assigned.filter((id) => !changed.has(id) && !previous.has(id));
    if (unknown.length > this.config.pageSize) return undefined;
    const fetched = await mapLimited(unknown, this.config.concurrency, async (id) => {
      try {
        return this.parseUser((await this.api.get(`/api/v1/users/${encodeURIComponent(id)}`, 'user', ctx)).body, ctx);
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

  private async readGroupScope(groupIds: string[], ctx: ReadContext): Promise<{ users: Map<string, DirectoryUser>; groups: (DirectoryGroup | undefined)[] }> {
    const users = new Map<string, DirectoryUser>();
    // Group member listings carry the whole user, so this scope needs no other user call (and an
    // incremental read would save nothing).
    const groups = await mapLimited(groupIds, this.config.concurrency, (id) =>
      this.readGroup(
        id,
        undefined,
        (raw) => {
          const user = this.parseUser(raw, ctx);
          if (user) users.set(user.id, user);
          return user?.id;
        },
        ctx,
      ),
    );
    return { users, groups };
  }

  private async loadSnapshot(): Promise<Snapshot | undefined> {
    if (!this.config.incremental.enabled || this.scope.mode !== 'app') return undefined;
    try {
      const text = await this.state.get(SNAPSHOT_KEY);
      if (text === undefined) return undefined;
      const parsed = snapshotSchema.safeParse(JSON.parse(text));
      if (parsed.success && parsed.data.scopeKey === this.scopeKey) return parsed.data;
      this.log.info('stored Okta snapshot is unusable or for another scope; reading fully');
    } catch (err) {
      this.log.warn({ err: outsideText(String(err)) }, 'could not load the Okta snapshot; reading fully');
    }
    return undefined;
  }

  private async saveSnapshot(snapshot: Snapshot): Promise<void> {
    try {
      await this.state.set(SNAPSHOT_KEY, JSON.stringify(snapshot));
    } catch (err) {
      // Keeping the older snapshot is safe: its watermark is earlier, so nothing is missed.
      this.log.warn({ err: outsideText(String(err)) }, 'could not store the Okta snapshot; the next read starts from the previous one');
    }
  }

  private toSourceReadError(err: unknown): SourceReadError {
    if (err instanceof SourceReadError) return err;
    if (isAbort(err)) return new SourceReadError('Okta read was cancelled before it covered the scope');
    const failure = this.api.toSyncError(err, 'read');
    return new SourceReadError(`Okta read failed: ${failure.message}`, failure);
  }

  async read(opts: ReadOptions = {}): Promise<DirectoryRead> {
    const startedAt = Date.now();
    let ctx: ReadContext = { issues: [], ...(opts.signal ? { signal: opts.signal } : {}) };
    try {
      if (this.scope.mode === 'groups') {
        const { users, groups } = await this.readGroupScope(this.scope.groupIds, ctx);
        return this.finish(users, groups, ctx, 'full');
      }
      const snapshot = await this.loadSnapshot();
      const due = snapshot === undefined || opts.mode === 'full' || this.now() - snapshot.fullReadAt >= this.config.incremental.fullReadEvery;
      let users = snapshot && !due ? await this.readAppUsersIncremental(this.scope.appId, snapshot, ctx) : undefined;
      const mode = users ? 'incremental' : 'full';
      if (!users) {
        ctx = { ...ctx, issues: [] };
        users = await this.readAppUsersFull(this.scope.appId, ctx);
      }
      const groups = await this.readAppGroups(this.scope.appId, ctx);
      // A group record that could not be read leaves the set unknown: every group event then counts.
      this.appGroups = groups.every((group) => group !== undefined) ? new Set(groups.map((group) => group.id)) : undefined;
      if (this.config.incremental.enabled) {
        await this.saveSnapshot({
          scopeKey: this.scopeKey,
          fullReadAt: mode === 'full' || !snapshot ? this.now() : snapshot.fullReadAt,
          watermark: new Date((ctx.serverDate ?? startedAt) - WATERMARK_OVERLAP_MS).toISOString(),
          users: [...users.values()],
        });
      }
      return this.finish(users, groups, ctx, mode);
    } catch (err) {
      throw this.toSourceReadError(err);
    }
  }

  private finish(users: Map<string, DirectoryUser>, groups: (DirectoryGroup | undefined)[], ctx: ReadContext, mode: string): DirectoryRead {
    // A member outside the read (skipped record, or assigned after the user list was read) is left
    // out: memberIds only name users the read holds.
    const inRead = groups
      .filter((group): group is DirectoryGroup => group !== undefined)
      .map((group) => ({ ...group, memberIds: [...new Set(group.memberIds)].filter((id) => users.has(id)) }));
    this.log.info({ mode, users: users.size, groups: inRead.length, issues: ctx.issues.length }, 'Okta read complete');
    return { users: [...users.values()], groups: inRead, complete: true, issues: ctx.issues };
  }

  /** The user a ref names: GET /api/v1/users/{idOrLogin}, then, for an e-mail that is not a login, the one user holding it. */
  private async findUser(ref: string, ctx: ReadContext): Promise<unknown> {
    try {
      return (await this.api.get(`/api/v1/users/${encodeURIComponent(ref)}`, 'user', ctx)).body;
    } catch (err) {
      if (!(err instanceof SyncError && err.failureClass === 'not-found')) throw err;
    }
    // A quote would end the search expression early; no e-mail holds one.
    if (!ref.includes('@') || /["\\]/.test(ref)) return undefined;
    const search = encodeURIComponent(`profile.email eq "${ref}"`);
    const found: unknown[] = [];
    for await (const page of this.api.pages(`/api/v1/users?search=${search}&limit=${this.config.pageSize}`, 'users', ctx)) found.push(...page);
    // Okta compares case-insensitively; only a record whose e-mail is exactly this one (but for case) counts.
    const exact = found.filter((raw) => {
      const user = oktaUserSchema.safeParse(raw);
      return user.success && user.data.profile.email?.toLowerCase() === ref.toLowerCase();
    });
    if (exact.length > 1) throw new SourceReadError(`${exact.length} Okta users have the e-mail ${ref}; give the Okta user id instead`);
    if (exact.length === 0 && found.length > 0) {
      throw new SourceReadError(`Okta's search for the e-mail ${ref} answered ${found.length} user record(s), none of which tvsync could read as holding it`);
    }
    return exact[0];
  }

  /** Every group in `scope` the user belongs to, named as the full read names them; `complete` false when a record could not be read. */
  private async groupsOfUser(
    userId: string,
    inScope: (id: string) => boolean,
    nameOf: (id: string) => string | undefined,
    ctx: ReadContext,
  ): Promise<{ groups: DirectoryGroupRef[]; complete: boolean }> {
    const groups: DirectoryGroupRef[] = [];
    let complete = true;
    for await (const page of this.api.pages(`/api/v1/users/${encodeURIComponent(userId)}/groups`, 'user-groups', ctx)) {
      for (const raw of page) {
        const group = oktaGroupSchema.safeParse(raw);
        if (!group.success) {
          complete = false;
          continue;
        }
        if (inScope(group.data.id)) groups.push({ id: group.data.id, name: nameOf(group.data.id) ?? group.data.profile.name });
      }
    }
    return { groups, complete };
  }

  /** The app's assigned groups, with the names the full read gives them (the embedded group record). */
  private async appGroupNames(appId: string, ctx: ReadContext): Promise<{ names: Map<string, string | undefined>; complete: boolean }> {
    const names = new Map<string, string | undefined>();
    let complete = true;
    const limit = Math.max(APP_GROUPS_MIN_LIMIT, this.config.pageSize);
    for await (const page of this.api.pages(`/api/v1/apps/${appId}/groups?limit=${limit}&expand=group`, 'app-groups', ctx)) {
      for (const raw of page) {
        const parsed = oktaAppGroupSchema.safeParse(raw);
        // The full read skips such a group too; the user's memberships are then not known whole.
        if (!parsed.success) {
          complete = false;
          continue;
        }
        const group = oktaGroupSchema.safeParse(parsed.data._embedded?.group);
        names.set(parsed.data.id, group.success ? group.data.profile.name : undefined);
      }
    }
    return { names, complete };
  }

  private async lookupInApp(appId: string, wire: OktaUser, user: DirectoryUser, status: string, ctx: ReadContext): Promise<UserLookup> {
    let assignment: unknown;
    try {
      ({ body: assignment } = await this.api.get(`/api/v1/apps/${appId}/users/${encodeURIComponent(wire.id)}`, 'app-users', ctx));
    } catch (err) {
      if (!(err instanceof SyncError && err.failureClass === 'not-found')) throw err;
      // Okta answers 404 alike for "not assigned" and "no such app": only the first may take anyone out of scope.
      const app = oktaIdSchema.safeParse((await this.api.get(`/api/v1/apps/${appId}`, 'app', ctx)).body);
      if (!app.success) throw new SourceReadError(`Okta answered GET /api/v1/apps/${appId} with something that is not an app`);
      return { status: 'out-of-scope', user, why: `not assigned to the TeamViewer app ${appId}${status}` };
    }
    const parsed = oktaAppAssignmentSchema.safeParse(assignment);
    if (!parsed.success || parsed.data.id !== wire.id) {
      throw new SourceReadError(`Okta answered the app assignment of user ${wire.id} with a record tvsync cannot read`);
    }
    const { names, complete: assignedRead } = await this.appGroupNames(appId, ctx);
    const { groups, complete: membershipsRead } = await this.groupsOfUser(
      wire.id,
      (id) => names.has(id),
      (id) => names.get(id),
      ctx,
    );
    const via =
      parsed.data.scope === 'GROUP' ? `through ${parsed.data._links?.group?.name ? `group ${parsed.data._links.group.name}` : 'a group'}` : 'directly';
    return { status: 'in-scope', user, groups, groupsComplete: assignedRead && membershipsRead, why: `assigned to app ${appId} ${via}${status}` };
  }

  private async lookupInGroups(groupIds: string[], wire: OktaUser, user: DirectoryUser, status: string, ctx: ReadContext): Promise<UserLookup> {
    const scoped = new Set(groupIds);
    const { groups, complete } = await this.groupsOfUser(
      wire.id,
      (id) => scoped.has(id),
      () => undefined,
      ctx,
    );
    if (groups.length === 0 && complete) return { status: 'out-of-scope', user, why: `not a member of any configured group${status}` };
    if (groups.length === 0) throw new SourceReadError(`some of Okta user ${wire.id}'s group records could not be read; scope unknown`);
    const names = groups.map((group) => group.name).join(', ');
    return { status: 'in-scope', user, groups, groupsComplete: complete, why: `member of group${groups.length > 1 ? 's' : ''} ${names}${status}` };
  }

  async readUser(ref: string, opts: { signal?: AbortSignal } = {}): Promise<UserLookup> {
    const ctx: ReadContext = { issues: [], ...(opts.signal ? { signal: opts.signal } : {}) };
    const wanted = ref.trim();
    if (wanted === '') return { status: 'not-found', why: 'no user named' };
    try {
      const found = await this.findUser(wanted, ctx);
      if (found === undefined) return { status: 'not-found', why: `Okta has no user with the id, login or e-mail ${wanted}` };
      const parsed = oktaUserSchema.safeParse(found);
      if (!parsed.success) throw new SourceReadError(`Okta answered user ${wanted} with a record tvsync cannot read (${payloadReason(parsed.error)})`);
      const user = toDirectoryUser(parsed.data, this.config.emailAttribute);
      const status = parsed.data.status === 'ACTIVE' ? '' : `; status ${parsed.data.status}${user.active ? '' : ': disabled'}`;
      return this.scope.mode === 'app'
        ? await this.lookupInApp(this.scope.appId, parsed.data, user, status, ctx)
        : await this.lookupInGroups(this.scope.groupIds, parsed.data, user, status, ctx);
    } catch (err) {
      if (err instanceof SourceReadError) throw err;
      if (isAbort(err)) throw new SourceReadError('Okta read of one user was cancelled');
      const failure = this.api.toSyncError(err, 'user read');
      throw new SourceReadError(`Okta read of user ${wanted} failed: ${failure.message}`, failure);
    }
  }

  async changeFeed(): Promise<ChangeFeed | undefined> {
    const wanted = systemLogWanted(this.config);
    if (wanted.refused) this.log.warn(wanted.refused);
    if (!wanted.on) return undefined;
    this.feed ??= new OktaSystemLogFeed(this.api, this.config, this.state, this.eventScope, this.log, this.now);
    return this.feed;
  }

  async hookReceiver(): Promise<HookReceiver | undefined> {
    const hook = this.config.changes.eventHook;
    if (!hook.enabled || hook.hookSecret === undefined) return undefined;
    // The config loader registers it too; a config built in code (tests, the fakes) is covered all the same.
    registerSecret(hook.hookSecret);
    this.receiver ??= createOktaHookReceiver({ authHeader: hook.authHeader, hookSecret: hook.hookSecret }, this.eventScope, this.log);
    return this.receiver;
  }

  /** GET /api/v1/groups/{id} per group: Okta deletes groups outright, so 404 means deleted. */
  async lookupGroups(ids: readonly string[]): Promise<Map<string, 'deleted' | 'out-of-scope'>> {
    const answers = new Map<string, 'deleted' | 'out-of-scope'>();
    const ctx: ReadContext = { issues: [] };
    await mapLimited([...new Set(ids)], this.config.concurrency, async (id) => {
      const path = `/api/v1/groups/${encodeURIComponent(id)}`;
      let body: unknown;
      try {
        ({ body } = await this.api.get(path, 'group', ctx));
      } catch (err) {
        const failure = this.api.toSyncError(err, `GET ${path}`);
        if (failure.failureClass !== 'not-found') throw failure;
        answers.set(id, 'deleted');
        return;
      }
      const group = oktaIdSchema.safeParse(body);
      if (!group.success) throw new SyncError('invalid', `Okta answered GET ${path} with a group tvsync cannot read (${payloadReason(group.error)})`);
      answers.set(id, 'out-of-scope');
    });
    return answers;
  }

  async check(): Promise<ConnectionCheck> {
    const checks: ConnectionCheck['checks'] = [];
    const ctx: ReadContext = { issues: [] };
    const once: BackoffPolicy = { ...this.backoff, attempts: 1 };
    /** Size of one small page; a page that is not a list fails the check like it fails a read. */
    const pageLength = async (path: string, bucket: string): Promise<number> => {
      const items = z.array(z.unknown()).safeParse((await this.api.get(path, bucket, ctx, once)).body);
      if (!items.success) throw new SyncError('invalid', `Okta answered ${path} with something other than a list`);
      return items.data.length;
    };
    /** Records one check; false when later checks cannot succeed either. */
    const attempt = async (name: string, run: () => Promise<string>): Promise<boolean> => {
      try {
        checks.push({ name, ok: true, detail: await run() });
        return true;
      } catch (err) {
        const failure = this.api.toSyncError(err, name);
        checks.push({ name, ok: false, detail: failure.message });
        return !['unauthorised', 'transient', 'rate-limited'].includes(failure.failureClass);
      }
    };

    const auth = this.config.auth;
    const signedIn =
      auth.method === 'apiToken' ||
      (await attempt('access token', async () => {
        await this.api.ensureAccessToken();
        return `Okta issued an access token to service app ${auth.clientId}`;
      }));
    if (signedIn && this.scope.mode === 'app') {
      const base = `/api/v1/apps/${this.scope.appId}`;
      const usersOk = await attempt('assigned users', async () =>
        (await pageLength(`${base}/users?limit=1&expand=user`, 'app-users')) > 0 ? 'read a user assigned to the app' : 'the app has no users assigned yet',
      );
      if (usersOk) {
        await attempt('assigned groups', async () => {
          const n = await pageLength(`${base}/groups?limit=${APP_GROUPS_MIN_LIMIT}`, 'app-groups');
          return n > 0 ? `read ${n}${n === APP_GROUPS_MIN_LIMIT ? '+' : ''} group(s) assigned to the app` : 'the app has no groups assigned';
        });
      }
    } else if (signedIn && this.scope.mode === 'groups') {
      let next = await attempt('users', async () =>
        (await pageLength('/api/v1/users?limit=1', 'users')) > 0 ? 'read a user' : 'Okta answered, with no users',
      );
      for (const id of this.scope.groupIds) {
        if (!next) break;
        next = await attempt(`group ${id}`, async () => {
          const group = oktaGroupSchema.safeParse((await this.api.get(`/api/v1/groups/${id}`, 'group', ctx, once)).body);
          return group.success ? `found "${group.data.profile.name}"` : 'found, but the record could not be read';
        });
      }
    }
    // Config only, no request: whether the log can be read shows at the feed's first poll.
    const logs = systemLogWanted(this.config);
    if (logs.refused) checks.push({ name: 'system log', ok: false, detail: logs.refused });
    return { ok: checks.every((c) => c.ok), checks };
  }
}
