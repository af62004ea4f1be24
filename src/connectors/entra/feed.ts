import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { z } from 'zod';
import { SyncError } from '../../model/failure.js';
import { payloadReason } from '../../net/payload.js';
import { scrubSecrets } from '../../net/secrets.js';
import type { ChangeBatch, ChangeFeed, ChangeHint } from '../changes.js';
import { SourceReadError, type SourceStateStore } from '../source.js';
import { FullReadNeeded, LIST_USERS, READ_GROUPS, type Call, type EntraGraph } from './client.js';
import type { EntraSourceConfig } from './config.js';
import { latestDeltaLink } from './delta.js';
import { listScopeRoots, type ScopeRoots } from './lookup.js';
import { SNAPSHOT_KEY, snapshotSchema } from './snapshot.js';
import { GROUP_TYPE, PAGE_SIZE, USER_TYPE, groupDeltaSchema, groupSchema, objectRefSchema, type GraphPage } from './wire.js';

/**
 * The polled fast lane (`entra-delta`): short Graph delta rounds on users and groups from links of
 * its own (the cycle's delta links in the snapshot are never read or moved here), and, in
 * assignment mode, a comparison of the app's assignments with the last poll's, since an app
 * (un)assignment shows in neither delta.
 */

export const FEED_KEY = 'entra.feed';

const feedStateSchema = z.object({
  version: z.literal(1),
  fingerprint: z.string(),
  usersLink: z.string().min(1),
  groupsLink: z.string().min(1),
  /** Names of the groups in scope, to tell a rename from a membership change. */
  names: z.record(z.string(), z.string()),
  /** Assignment mode: what was assigned to the app at the last poll. */
  assigned: z.object({ users: z.array(z.string()), groups: z.record(z.string(), z.string().nullable()) }).optional(),
});
type FeedState = z.output<typeof feedStateSchema>;

/** What a poll's rounds found; `fullCycle` reasons are folded into one hint. */
class Findings {
  readonly users = new Map<string, string>();
  private readonly reasons: { reason: string; what: string }[] = [];
  constructor(private readonly atMs: number) {}
  user(id: string, what: string): void {
    if (!this.users.has(id)) this.users.set(id, what);
  }
  fullCycle(reason: string, what: string): void {
    this.reasons.push({ reason, what });
  }
  hints(): ChangeHint[] {
    const hints: ChangeHint[] = [...this.users].map(([userId, what]) => ({ userId, atMs: this.atMs, what }));
    const first = this.reasons[0];
    if (first) {
      const reasons = [...new Set(this.reasons.map((r) => r.reason))];
      const fullCycle = reasons.length > 3 ? `${reasons.slice(0, 3).join('; ')}; and ${reasons.length - 3} more` : reasons.join('; ');
      hints.push({ fullCycle, atMs: this.atMs, what: first.what });
    }
    return hints;
  }
}

/** Which groups' changes matter, as the full read would list them. */
interface GroupScope {
  /** The scoped groups (configured or assigned), id → name where known. */
  roots: Map<string, string | undefined>;
  /** With nestedGroups: groups inside the scoped ones, as the last full read found them. */
  nested: Set<string>;
  /** With nestedGroups and no snapshot yet: any group may be nested in scope. */
  unsure: boolean;
}

class TooManyChanges extends Error {}

export interface FeedDeps {
  graph: EntraGraph;
  config: EntraSourceConfig;
  state: SourceStateStore;
  log: Logger;
  now: () => number;
  /** Requests sent so far through `graph` (the feed's own counting client). */
  requests: () => number;
  /** Subscription upkeep for change notifications, run in each poll; never throws. */
  upkeep?: (signal?: AbortSignal) => Promise<void>;
}

export class EntraDeltaFeed implements ChangeFeed {
  readonly name = 'entra-delta';
  readonly everyMs: number;
  private readonly fingerprint: string;

  constructor(private readonly deps: FeedDeps) {
    this.everyMs = deps.config.changes.delta.every;
    const { config } = deps;
    this.fingerprint = createHash('sha256')
      .update(JSON.stringify([config.tenantId, new URL(config.graphBaseUrl).origin, config.scope, config.nestedGroups]))
      .digest('hex')
      .slice(0, 16);
  }

  async poll(opts: { signal?: AbortSignal } = {}): Promise<ChangeBatch> {
    const { signal } = opts;
    const before = this.deps.requests();
    await this.deps.upkeep?.(signal);
    if (!this.deps.config.changes.delta.enabled) {
      return { hints: [], commit: async () => {}, requests: this.deps.requests() - before };
    }
    try {
      const { hints, next } = await this.round(signal);
      return {
        hints,
        commit: () => this.deps.state.set(FEED_KEY, JSON.stringify(next)),
        requests: this.deps.requests() - before,
      };
    } catch (err) {
      if (err instanceof SourceReadError) throw err;
      const message = err instanceof Error ? err.message : String(err);
      throw new SourceReadError(`Entra delta round failed: ${scrubSecrets(message)}`, err);
    }
  }

  /**
   * The groups delta from the stored position, without moving it: which members of `groupIds` changed.
   * For a change notification on a group, which names the group but not the member.
   */
  async peekGroups(groupIds: ReadonlySet<string>, signal?: AbortSignal): Promise<ChangeHint[]> {
    const saved = await this.load();
    if (!saved) return [];
    const found = new Findings(this.deps.now());
    const scope = await this.groupScope(signal);
    const names = { ...saved.names };
    try {
      await this.groupsRound(saved.groupsLink, scope, names, found, groupIds, signal);
    } catch (err) {
      if (err instanceof FullReadNeeded || err instanceof TooManyChanges) return [];
      throw err;
    }
    return found.hints();
  }

  private async load(): Promise<FeedState | undefined> {
    const text = await this.deps.state.get(FEED_KEY);
    if (text === undefined) return undefined;
    try {
      const saved = feedStateSchema.parse(JSON.parse(text));
      return saved.fingerprint === this.fingerprint ? saved : undefined;
    } catch {
      this.deps.log.warn('Entra: the delta feed position is unreadable; starting from now');
      return undefined;
    }
  }

  private async round(signal?: AbortSignal): Promise<{ hints: ChangeHint[]; next: FeedState }> {
    const saved = await this.load();
    const roots = await listScopeRoots(this.deps.graph, this.deps.config, [], signal);
    if (!saved) return { hints: [], next: await this.fresh(roots, signal) };

    const found = new Findings(this.deps.now());
    const assigned = this.compareAssignments(saved, roots, found);
    const names: Record<string, string> = { ...saved.names };
    for (const [id, name] of roots.groups) if (name !== undefined) names[id] = name;
    const scope = await this.groupScope(signal, roots);
    let next: FeedState;
    try {
      const usersLink = await this.usersRound(saved.usersLink, found, signal);
      const groupsLink = await this.groupsRound(saved.groupsLink, scope, names, found, undefined, signal);
      next = { ...saved, usersLink, groupsLink, names: pick(names, roots.groups), ...(assigned ? { assigned } : {}) };
    } catch (err) {
      if (!(err instanceof FullReadNeeded) && !(err instanceof TooManyChanges)) throw err;
      // The link cannot continue (expired, or more changes than a round may read): a cycle catches up, the feed starts from now.
      this.deps.log.info({ reason: err.message }, 'Entra: the delta feed starts again from now; a full cycle catches up');
      found.fullCycle(err instanceof TooManyChanges ? err.message : `the Graph delta link cannot continue (${err.message})`, 'delta link reset');
      next = await this.fresh(roots, signal);
    }
    return { hints: found.hints(), next };
  }

  /** A position at "now": the latest delta links, and the names and assignments as they stand. */
  private async fresh(roots: ScopeRoots, signal?: AbortSignal): Promise<FeedState> {
    const usersLink = await latestDeltaLink(this.deps.graph, 'users', signal);
    const groupsLink = await latestDeltaLink(this.deps.graph, 'groups', signal);
    const names: Record<string, string> = {};
    for (const [id, name] of roots.groups) {
      const known = name ?? (await this.groupName(id, signal));
      if (known !== undefined) names[id] = known;
    }
    const state: FeedState = { version: 1, fingerprint: this.fingerprint, usersLink, groupsLink, names };
    if (this.deps.config.scope.mode === 'assignment') state.assigned = assignedOf(roots);
    return state;
  }

  private async groupName(id: string, signal?: AbortSignal): Promise<string | undefined> {
    const call: Call = { ...READ_GROUPS, what: `reading group ${id}` };
    try {
      const group = groupSchema.safeParse(await this.deps.graph.get(call, `/groups/${encodeURIComponent(id)}`, { select: ['id', 'displayName'] }, signal));
      if (!group.success) throw new SyncError('invalid', `${call.what}: Graph sent a group tvsync cannot read (${payloadReason(group.error)})`);
      return group.data.displayName ?? id;
    } catch (err) {
      // A configured group that does not exist fails the cycle; the feed just has no name to compare.
      if (err instanceof SyncError && err.failureClass === 'not-found') return undefined;
      throw err;
    }
  }

  private compareAssignments(saved: FeedState, roots: ScopeRoots, found: Findings): FeedState['assigned'] {
    if (this.deps.config.scope.mode !== 'assignment') return undefined;
    const now = assignedOf(roots);
    const before = saved.assigned;
    if (!before) {
      found.fullCycle('the app assignments were not known yet', 'app assignments');
      return now;
    }
    const was = new Set(before.users);
    for (const id of roots.directUserIds) if (!was.has(id)) found.user(id, 'app assignment added');
    for (const id of was) if (!roots.directUserIds.has(id)) found.user(id, 'app assignment removed');
    for (const [id, name] of roots.groups) {
      if (!(id in before.groups)) found.fullCycle(`group ${name ?? id} was assigned to the app`, 'app assignments');
      else if (name !== undefined && before.groups[id] !== null && before.groups[id] !== name)
        found.fullCycle(`group ${before.groups[id]} was renamed to ${name}`, 'app assignments');
    }
    for (const [id, name] of Object.entries(before.groups)) {
      if (!roots.groups.has(id)) found.fullCycle(`group ${name ?? id} was unassigned from the app`, 'app assignments');
    }
    return now;
  }

  private async groupScope(signal?: AbortSignal, given?: ScopeRoots): Promise<GroupScope> {
    const roots = given ?? (await listScopeRoots(this.deps.graph, this.deps.config, [], signal));
    const scope: GroupScope = { roots: roots.groups, nested: new Set(), unsure: false };
    if (!this.deps.config.nestedGroups) return scope;
    const text = await this.deps.state.get(SNAPSHOT_KEY);
    const snapshot = text === undefined ? undefined : snapshotSchema.safeParse(safeJson(text));
    if (!snapshot?.success) {
      scope.unsure = true;
      return scope;
    }
    for (const g of snapshot.data.groups) if (roots.groups.has(g.id)) for (const id of g.nestedGroupIds) scope.nested.add(id);
    return scope;
  }

  /** Pages of one delta round, at most changes.delta.maxPages of them; the link the round ends with. */
  private async *roundPages(call: Call, link: string, signal?: AbortSignal): AsyncGenerator<GraphPage, void> {
    const max = this.deps.config.changes.delta.maxPages;
    let count = 0;
    for await (const page of this.deps.graph.pages(call, link, { headers: { Prefer: `odata.maxpagesize=${PAGE_SIZE}` } }, signal)) {
      if (++count > max) throw new TooManyChanges(`${call.what}: more changes than ${max} pages in one round`);
      yield page;
    }
  }

  private async usersRound(link: string, found: Findings, signal?: AbortSignal): Promise<string> {
    let next: string | undefined;
    for await (const page of this.roundPages(LIST_USERS, link, signal)) {
      for (const raw of page.value) {
        const ref = objectRefSchema.safeParse(raw);
        if (!ref.success) {
          found.fullCycle(`a user change could not be read (${payloadReason(ref.error)})`, 'users delta');
          continue;
        }
        found.user(ref.data.id, ref.data['@removed'] ? 'users delta: removed' : 'users delta');
      }
      next = page['@odata.deltaLink'] ?? next;
    }
    if (!next) throw new SyncError('invalid', 'reading user changes: the delta round ended without a delta link');
    return next;
  }

  /** Member hints for membership changes of groups in scope; a full cycle for a scoped group renamed, deleted or restored. */
  private async groupsRound(
    link: string,
    scope: GroupScope,
    names: Record<string, string>,
    found: Findings,
    only: ReadonlySet<string> | undefined,
    signal?: AbortSignal,
  ): Promise<string> {
    const nestedMode = this.deps.config.nestedGroups;
    let next: string | undefined;
    for await (const page of this.roundPages(READ_GROUPS, link, signal)) {
      for (const raw of page.value) {
        const parsed = groupDeltaSchema.safeParse(raw);
        if (!parsed.success) {
          found.fullCycle(`a group change could not be read (${payloadReason(parsed.error)})`, 'groups delta');
          continue;
        }
        const g = parsed.data;
        if (only && !only.has(g.id)) continue;
        const root = scope.roots.has(g.id);
        if (!root && !scope.nested.has(g.id) && !scope.unsure) continue;
        const label = names[g.id] ?? scope.roots.get(g.id) ?? g.displayName ?? g.id;
        if (g['@removed']) {
          if (root || nestedMode) found.fullCycle(`group ${label} was deleted`, 'groups delta');
          continue;
        }
        if (root && g.displayName !== undefined && names[g.id] !== g.displayName) {
          found.fullCycle(
            names[g.id] === undefined ? `group ${g.displayName} was created or restored` : `group ${names[g.id]} was renamed to ${g.displayName}`,
            'groups delta',
          );
          names[g.id] = g.displayName;
        }
        for (const m of g['members@delta'] ?? []) {
          const type = m['@odata.type'];
          const change = m['@removed'] ? 'removed from' : 'added to';
          if (type === undefined || type === USER_TYPE) found.user(m.id, `groups delta: member ${change} ${label}`);
          else if (type === GROUP_TYPE && nestedMode) found.fullCycle(`a group was ${change} group ${label}`, 'groups delta');
        }
      }
      next = page['@odata.deltaLink'] ?? next;
    }
    if (!next) throw new SyncError('invalid', 'reading group changes: the delta round ended without a delta link');
    return next;
  }
}

function assignedOf(roots: ScopeRoots): NonNullable<FeedState['assigned']> {
  return { users: [...roots.directUserIds], groups: Object.fromEntries([...roots.groups].map(([id, name]) => [id, name ?? null])) };
}

function pick(names: Record<string, string>, roots: Map<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(names).filter(([id]) => roots.has(id)));
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
