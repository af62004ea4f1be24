import type { TokenCredential } from '@azure/identity';
import type { Logger } from 'pino';
import type { DirectoryIssue, DirectoryRead, DirectoryUser, UserLookup } from '../../model/directory.js';
import { SyncError } from '../../model/failure.js';
import { mapLimited } from '../../net/limiter.js';
import { payloadReason } from '../../net/payload.js';
import { boundedBackoff } from '../../net/request-limits.js';
import { DEFAULT_BACKOFF, type BackoffPolicy } from '../../net/retry.js';
import { registerSecret, scrubSecrets } from '../../net/secrets.js';
import type { ChangeFeed, HookReceiver } from '../changes.js';
import { SourceReadError, type ConnectionCheck, type DirectorySource, type ReadOptions, type SourceDeps, type SourceStateStore } from '../source.js';
import { EntraGraph, FullReadNeeded, LIST_ASSIGNMENTS, LIST_USERS, READ_GROUPS, type Call, type GetOptions } from './client.js';
import type { EntraSourceConfig } from './config.js';
import { latestDeltaLink, readGroupChanges, readUserChanges } from './delta.js';
import { EntraDeltaFeed } from './feed.js';
import { listScopeRoots, lookupUser, type ScopeRoots } from './lookup.js';
import { EntraNotifications, EntraSubscriptions } from './notifications.js';
import { EntraSignIn, isMicrosoftAuthority } from './sign-in.js';
import { SNAPSHOT_KEY, snapshotFingerprint, snapshotSchema, type ScopedGroup, type Snapshot } from './snapshot.js';
import { GROUP_TYPE, PAGE_SIZE, USER_FIELDS, USER_TYPE, appRoleAssignmentSchema, groupSchema, objectRefSchema, pageSchema, toDirectoryUser } from './wire.js';

export interface EntraSourceDeps extends SourceDeps {
  /** Replaces the credential built from the config (managed or workload identity, local fakes). */
  credential?: TokenCredential;
}

export function createEntraSource(config: EntraSourceConfig, deps: EntraSourceDeps): DirectorySource {
  return new EntraSource(config, deps);
}

/**
 * Entra ID as a source: the users and groups assigned to the TeamViewer enterprise app, or members
 * of listed groups. A full read notes the delta links first; later reads apply the changes since to
 * the snapshot the last read left, and read everything again when the links cannot continue.
 */
class EntraSource implements DirectorySource {
  readonly kind = 'entra';
  private readonly graph: EntraGraph;
  private readonly state: SourceStateStore;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly backoff: BackoffPolicy;
  private readonly fingerprint: string;
  /**
   * Groups the last delta round reported removed (soft-deleted or gone for good): Graph answers 404
   * for them, so a lookup need not ask. Only the latest read's round counts, so a group restored
   * since an older round is never answered from that round.
   */
  private removedByDelta: ReadonlySet<string> = new Set();

  constructor(
    private readonly config: EntraSourceConfig,
    deps: EntraSourceDeps,
  ) {
    this.state = deps.state;
    this.log = deps.log;
    this.now = deps.now ?? Date.now;
    this.backoff = deps.backoff ?? DEFAULT_BACKOFF;
    if (config.disableInstanceDiscovery && isMicrosoftAuthority(config.authorityHost)) {
      this.log.warn(
        { authorityHost: config.authorityHost },
        "Entra: disableInstanceDiscovery is meant for authorities Microsoft does not know; Microsoft's own sign-in hosts need no instance discovery",
      );
    }
    const signIn = new EntraSignIn(config, deps.credential, boundedBackoff(this.backoff).maxWaitMs);
    this.graph = new EntraGraph(config, signIn, this.log, this.backoff, this.now);
    this.fingerprint = snapshotFingerprint(config);
    registerSecret(config.changes.notifications.clientState);
    this.signIn = signIn;
  }

  private readonly signIn: EntraSignIn;
  private feed: EntraDeltaFeed | undefined;

  /** One feed per source: the poll and the notification hook share its position. Its client counts its requests. */
  private deltaFeed(): EntraDeltaFeed {
    if (this.feed) return this.feed;
    let requests = 0;
    // Each Graph request asks for a token first (cached after the first): counting those counts the requests.
    const counting = {
      token: (signal?: AbortSignal) => {
        requests++;
        return this.signIn.token(signal);
      },
    };
    const graph = new EntraGraph(this.config, counting, this.log, this.backoff, this.now);
    const subscriptions = new EntraSubscriptions(graph, this.config, this.state, this.log, this.now);
    this.feed = new EntraDeltaFeed({
      graph,
      config: this.config,
      state: this.state,
      log: this.log,
      now: this.now,
      requests: () => requests,
      upkeep: (signal) => subscriptions.upkeep(signal),
    });
    return this.feed;
  }

  async readUser(ref: string, opts: { signal?: AbortSignal } = {}): Promise<UserLookup> {
    try {
      return await lookupUser({ graph: this.graph, config: this.config }, ref, opts.signal);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (err instanceof SourceReadError) throw new SourceReadError(scrubSecrets(message), err.cause);
      throw new SourceReadError(`Entra: reading user ${ref} failed: ${scrubSecrets(message)}`, err);
    }
  }

  /** The delta feed; it also keeps the notification subscriptions, so it exists when either is on. */
  async changeFeed(): Promise<ChangeFeed | undefined> {
    const { delta, notifications } = this.config.changes;
    return delta.enabled || notifications.enabled ? this.deltaFeed() : undefined;
  }

  async hookReceiver(): Promise<HookReceiver | undefined> {
    const { notifications, delta } = this.config.changes;
    if (!notifications.enabled || notifications.clientState === undefined) return undefined;
    const feed = this.deltaFeed();
    return new EntraNotifications({
      clientState: notifications.clientState,
      log: this.log,
      now: this.now,
      ...(delta.enabled ? { peekGroups: (ids, signal) => feed.peekGroups(ids, signal) } : {}),
    });
  }

  private readScopeRoots(issues: DirectoryIssue[], signal?: AbortSignal): Promise<ScopeRoots> {
    return listScopeRoots(this.graph, this.config, issues, signal);
  }

  /** Lists one scoped group's members into `users`; undefined when an assigned group has gone. */
  private async readGroup(
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
        const group = groupSchema.safeParse(await this.graph.get(call, groupPath, { select: ['id', 'displayName'] }, signal));
        if (!group.success) throw new SyncError('invalid', `${call.what}: Graph sent a group tvsync cannot read (${payloadReason(group.error)})`);
        name = group.data.displayName ?? id;
      }
      const memberIds = new Set<string>();
      const nestedGroupIds = new Set<string>();
      const path = this.config.nestedGroups ? `${groupPath}/transitiveMembers` : `${groupPath}/members/microsoft.graph.user`;
      for await (const page of this.graph.pages(call, path, { select: USER_FIELDS, top: PAGE_SIZE }, signal)) {
        for (const raw of page.value) {
          const ref = objectRefSchema.safeParse(raw);
          if (!ref.success) {
            issues.push({ kind: 'membership', objectId: id, reason: `a member of group ${name} could not be read (${payloadReason(ref.error)}); skipped` });
            continue;
          }
          const type = ref.data['@odata.type'];
          if (type === GROUP_TYPE) nestedGroupIds.add(ref.data.id);
          if (type !== undefined && type !== USER_TYPE) continue; // devices, contacts, service principals
          memberIds.add(ref.data.id);
          const parsed = toDirectoryUser(raw, this.config.emailAttribute);
          if ('user' in parsed) users.set(parsed.user.id, parsed.user);
          else issues.push({ kind: 'user', objectId: ref.data.id, reason: `user record could not be read (${parsed.reason}); skipped` });
        }
      }
      return { id, name, memberIds: [...memberIds], nestedGroupIds: [...nestedGroupIds] };
    } catch (err) {
      if (!(err instanceof SyncError) || err.failureClass !== 'not-found') throw err;
      if (this.config.scope.mode === 'groups') {
        throw new SyncError('not-found', `group ${id} in scope.groupIds was not found in Entra; fix or remove the id`, { status: 404 });
      }
      issues.push({ kind: 'group', objectId: id, reason: `group ${nameHint ?? id} is assigned to the app but was not found (deleted?); skipped` });
      return undefined;
    }
  }

  private async readDirectUsers(ids: string[], users: Map<string, DirectoryUser>, issues: DirectoryIssue[], signal?: AbortSignal): Promise<void> {
    await mapLimited(ids, this.config.concurrency, async (id) => {
      let raw: unknown;
      try {
        raw = await this.graph.get({ ...LIST_USERS, what: `reading user ${id}` }, `/users/${encodeURIComponent(id)}`, { select: USER_FIELDS }, signal);
      } catch (err) {
        if (!(err instanceof SyncError) || err.failureClass !== 'not-found') throw err;
        issues.push({ kind: 'user', objectId: id, reason: 'user is assigned to the app but was not found (deleted, or not replicated yet); skipped' });
        return;
      }
      const parsed = toDirectoryUser(raw, this.config.emailAttribute);
      if ('user' in parsed) users.set(id, parsed.user);
      else issues.push({ kind: 'user', objectId: id, reason: `user record could not be read (${parsed.reason}); skipped` });
    });
  }

  private async readGroups(
    wanted: [string, string | undefined][],
    users: Map<string, DirectoryUser>,
    issues: DirectoryIssue[],
    signal?: AbortSignal,
  ): Promise<ScopedGroup[]> {
    const read = new Map<string, ScopedGroup>();
    await mapLimited(wanted, this.config.concurrency, async ([id, name]) => {
      const group = await this.readGroup(id, name, users, issues, signal);
      if (group) read.set(id, group);
    });
    return wanted.flatMap(([id]) => read.get(id) ?? []);
  }

  private async finish(
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
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
    const snapshot: Snapshot = {
      version: 1,
      fingerprint: this.fingerprint,
      ...base,
      directUserIds: [...roots.directUserIds],
      groups,
      users: readUsers,
      issues: uniqueIssues,
    };
    await this.state.set(SNAPSHOT_KEY, JSON.stringify(snapshot));
    return {
      users: readUsers,
      groups: groups.map((g) => ({ id: g.id, name: g.name, memberIds: g.memberIds.filter((id) => present.has(id)) })),
      complete: true,
      issues: uniqueIssues,
    };
  }

  private async fullRead(signal?: AbortSignal): Promise<DirectoryRead> {
    // Links first: what changes while the listing runs is replayed next cycle instead of being lost.
    const usersDeltaLink = await latestDeltaLink(this.graph, 'users', signal);
    const groupsDeltaLink = await latestDeltaLink(this.graph, 'groups', signal);
    const users = new Map<string, DirectoryUser>();
    const issues: DirectoryIssue[] = [];
    const roots = await this.readScopeRoots(issues, signal);
    const groups = await this.readGroups([...roots.groups], users, issues, signal);
    await this.readDirectUsers(
      [...roots.directUserIds].filter((id) => !users.has(id)),
      users,
      issues,
      signal,
    );
    const read = await this.finish({ fullReadAt: this.now(), usersDeltaLink, groupsDeltaLink }, roots, groups, users, issues);
    this.removedByDelta = new Set();
    return read;
  }

  private async incrementalRead(saved: Snapshot, signal?: AbortSignal): Promise<DirectoryRead> {
    const userChanges = await readUserChanges(this.graph, saved.usersDeltaLink, this.config.emailAttribute, signal);
    const groupChanges = await readGroupChanges(this.graph, saved.groupsDeltaLink, signal);
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

    const roots = await this.readScopeRoots(issues, signal);
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
    const relisted = await this.readGroups(stale, users, issues, signal);
    const byId = new Map([...kept, ...relisted].map((g) => [g.id, g]));
    const groups = [...roots.groups.keys()].flatMap((id) => byId.get(id) ?? []);
    await this.readDirectUsers(
      [...roots.directUserIds].filter((id) => !users.has(id)),
      users,
      issues,
      signal,
    );

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
    const read = await this.finish(base, roots, groups, users, [...carried, ...issues]);
    this.removedByDelta = groupChanges.removed;
    return read;
  }

  private async loadSnapshot(): Promise<Snapshot | undefined> {
    const text = await this.state.get(SNAPSHOT_KEY);
    if (text === undefined) return undefined;
    try {
      return snapshotSchema.parse(JSON.parse(text));
    } catch {
      this.log.warn('Entra: saved delta state is unreadable; reading everything');
      return undefined;
    }
  }

  private fullReadReason(saved: Snapshot | undefined, opts: ReadOptions): string | undefined {
    if (opts.mode === 'full') return 'a full read was asked for';
    if (!saved) return 'no saved delta state';
    if (saved.fingerprint !== this.fingerprint) return 'the scope or attribute settings changed';
    if (this.now() - saved.fullReadAt >= this.config.fullReadInterval) return 'the full read interval has passed';
    return undefined;
  }

  async read(opts: ReadOptions = {}): Promise<DirectoryRead> {
    try {
      const saved = opts.mode === 'full' ? undefined : await this.loadSnapshot();
      const reason = this.fullReadReason(saved, opts);
      if (saved && reason === undefined) {
        try {
          return await this.incrementalRead(saved, opts.signal);
        } catch (err) {
          if (!(err instanceof FullReadNeeded)) throw err;
          this.log.info({ reason: err.message }, 'Entra: delta state cannot continue; reading everything');
        }
      } else {
        this.log.info({ reason }, 'Entra: full read');
      }
      return await this.fullRead(opts.signal);
    } catch (err) {
      if (err instanceof SourceReadError) throw err;
      const message = err instanceof Error ? err.message : String(err);
      throw new SourceReadError(`Entra read failed: ${scrubSecrets(message)}`, err);
    }
  }

  /** GET /groups/{id} per group, unless the last delta round already said it was removed. */
  async lookupGroups(ids: readonly string[]): Promise<Map<string, 'deleted' | 'out-of-scope'>> {
    const answers = new Map<string, 'deleted' | 'out-of-scope'>();
    const ask: string[] = [];
    for (const id of new Set(ids)) {
      if (this.removedByDelta.has(id)) answers.set(id, 'deleted');
      else ask.push(id);
    }
    await mapLimited(ask, this.config.concurrency, async (id) => {
      const call: Call = { ...READ_GROUPS, what: `looking up group ${id} in Entra` };
      let body: unknown;
      try {
        body = await this.graph.get(call, `/groups/${encodeURIComponent(id)}`, { select: ['id'] });
      } catch (err) {
        if (!(err instanceof SyncError) || err.failureClass !== 'not-found') throw err;
        answers.set(id, 'deleted');
        return;
      }
      const group = groupSchema.safeParse(body);
      if (!group.success) throw new SyncError('invalid', `${call.what}: Graph sent a group tvsync cannot read (${payloadReason(group.error)})`);
      answers.set(id, 'out-of-scope');
    });
    return answers;
  }

  async check(): Promise<ConnectionCheck> {
    const checks: ConnectionCheck['checks'] = [];
    const policy: BackoffPolicy = { ...this.backoff, attempts: Math.min(this.backoff.attempts, 2) };
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
      const page = pageSchema.safeParse(await this.graph.get(call, path, { ...opts, top: 5, policy }));
      if (!page.success) throw new SyncError('invalid', `${call.what}: Graph sent a page tvsync cannot read`);
      return page.data.value;
    };
    const tryGroup = (id: string): Promise<boolean> =>
      attempt(`read group ${id}`, async () => {
        const group = groupSchema.safeParse(
          await this.graph.get({ ...READ_GROUPS, what: `reading group ${id}` }, `/groups/${encodeURIComponent(id)}`, { select: ['id', 'displayName'], policy }),
        );
        if (!group.success) throw new SyncError('invalid', `reading group ${id}: Graph sent a group tvsync cannot read (${payloadReason(group.error)})`);
        const members = await firstPage(
          { ...READ_GROUPS, what: `reading members of group ${id}` },
          `/groups/${encodeURIComponent(id)}/members/microsoft.graph.user`,
          { select: ['id'] },
        );
        return `group "${group.data.displayName ?? id}": members can be read (${members.length} on a first page of 5)`;
      });

    const signedIn = await attempt('sign in', async () => {
      await this.graph.token();
      return `signed in to tenant ${this.config.tenantId} as app ${this.config.clientId}`;
    });
    if (!signedIn) return { ok: false, checks };
    await attempt('read users', async () => `users can be read (${(await firstPage(LIST_USERS, '/users', { select: ['id'] })).length} on a first page of 5)`);
    if (this.config.scope.mode === 'groups') {
      for (const id of this.config.scope.groupIds) await tryGroup(id);
    } else {
      let firstGroup: string | undefined;
      const path = `/servicePrincipals/${encodeURIComponent(this.config.scope.servicePrincipalId)}/appRoleAssignedTo`;
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
}
