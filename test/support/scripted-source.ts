import { readFileSync } from 'node:fs';
import type { ChangeFeed, ChangeHint } from '../../src/connectors/changes.js';
import { parseConfig } from '../../src/config/load.js';
import type { UserSyncReport } from '../../src/plan/user-sync.js';
import { Daemon } from '../../src/runtime/daemon.js';
import { FastLaneStore } from '../../src/store/fast-lane.js';
import { runCycle } from './cycle.js';
import { TOKEN, silentLog, writeConfig, writeExport } from './fixtures.js';
import { FAST } from './runtime.js';
import { waitFor } from './wait.js';
import { SourceReadError, type DirectorySource } from '../../src/connectors/source.js';
import type { DirectoryRead, DirectoryUser, UserLookup } from '../../src/model/directory.js';

/**
 * A directory the test changes while tvsync watches it: every change is also a hint on its feed,
 * as an IdP's change feed would give it. Reads (whole or one person) answer from the same records,
 * so a cycle and the fast lane see the same directory.
 */
export class ScriptedDirectory implements DirectorySource {
  readonly kind = 'scripted';
  private readonly users = new Map<string, { user: DirectoryUser; inScope: boolean }>();
  private readonly groups = new Map<string, { name: string; members: Set<string> }>();
  private pending: ChangeHint[] = [];
  outage = false;
  /** A whole read takes this long after it took its snapshot (a slow IdP, a long cycle). */
  readDelayMs = 0;
  polls = 0;
  userReads = 0;

  constructor(private readonly feedEveryMs = 100) {}

  async read(): Promise<DirectoryRead> {
    if (this.outage) throw new SourceReadError('the directory answered 503');
    const users = [...this.users.values()].filter((u) => u.inScope).map((u) => ({ ...u.user }));
    const ids = new Set(users.map((u) => u.id));
    const groups = [...this.groups].map(([id, g]) => ({ id, name: g.name, memberIds: [...g.members].filter((m) => ids.has(m)).sort() }));
    if (this.readDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.readDelayMs));
    return { users, groups, complete: true, issues: [] };
  }

  async check() {
    return { ok: true, checks: [] };
  }

  async readUser(ref: string): Promise<UserLookup> {
    this.userReads++;
    if (this.outage) throw new SourceReadError('the directory answered 503');
    const entry = this.users.get(ref) ?? [...this.users.values()].find((u) => u.user.email?.toLowerCase() === ref.toLowerCase());
    if (!entry) return { status: 'not-found', why: 'the directory has no such user' };
    if (!entry.inScope) return { status: 'out-of-scope', user: { ...entry.user }, why: 'not assigned to TeamViewer' };
    const groups = [...this.groups].filter(([, g]) => g.members.has(entry.user.id)).map(([id, g]) => ({ id, name: g.name }));
    return { status: 'in-scope', user: { ...entry.user }, groups, groupsComplete: true, why: 'assigned to TeamViewer' };
  }

  async changeFeed(): Promise<ChangeFeed> {
    return {
      name: 'scripted',
      everyMs: this.feedEveryMs,
      poll: async () => {
        this.polls++;
        if (this.outage) throw new SourceReadError('the change feed answered 503');
        const hints = this.pending;
        return {
          hints,
          requests: 1,
          commit: async () => {
            this.pending = this.pending.filter((h) => !hints.includes(h));
          },
        };
      },
    };
  }

  /** A hint without a change behind it (a duplicate, a late event). */
  hint(userId: string, atMs = Date.now(), what = 'user.updated'): void {
    this.pending.push({ userId, atMs, what });
  }

  private changed(userId: string | undefined, what: string, fullCycle?: string): number {
    const atMs = Date.now();
    this.pending.push({ ...(userId !== undefined ? { userId } : { fullCycle: fullCycle ?? what }), atMs, what });
    return atMs;
  }

  add(user: DirectoryUser, inScope = true): number {
    this.users.set(user.id, { user: { ...user }, inScope });
    return this.changed(user.id, 'user.created');
  }

  /** Sets a user without telling the feed (what a cycle finds on its own). */
  seed(users: DirectoryUser[]): void {
    for (const user of users) this.users.set(user.id, { user: { ...user }, inScope: true });
  }

  setActive(id: string, active: boolean): number {
    const entry = this.mustGet(id);
    entry.user.active = active;
    return this.changed(id, active ? 'user.activated' : 'user.deactivated');
  }

  setEmail(id: string, email: string): number {
    this.mustGet(id).user.email = email;
    return this.changed(id, 'user.updated');
  }

  rename(id: string, givenName: string): number {
    this.mustGet(id).user.givenName = givenName;
    return this.changed(id, 'user.updated');
  }

  setInScope(id: string, inScope: boolean): number {
    this.mustGet(id).inScope = inScope;
    return this.changed(id, inScope ? 'app.assigned' : 'app.unassigned');
  }

  remove(id: string): number {
    this.users.delete(id);
    for (const group of this.groups.values()) group.members.delete(id);
    return this.changed(id, 'user.deleted');
  }

  group(id: string, name: string, members: string[] = []): void {
    this.groups.set(id, { name, members: new Set(members) });
  }

  addMember(groupId: string, userId: string): number {
    this.groups.get(groupId)?.members.add(userId);
    return this.changed(userId, 'group.member.added');
  }

  removeMember(groupId: string, userId: string): number {
    this.groups.get(groupId)?.members.delete(userId);
    return this.changed(userId, 'group.member.removed');
  }

  renameGroup(groupId: string, name: string): number {
    const group = this.groups.get(groupId);
    if (group) group.name = name;
    return this.changed(undefined, 'group.renamed', `group ${groupId} renamed`);
  }

  private mustGet(id: string) {
    const entry = this.users.get(id);
    if (!entry) throw new Error(`no scripted user ${id}`);
    return entry;
  }
}

/**
 * A daemon (scheduler and workers) whose sync `corp` reads `directory` against the TeamViewer at
 * `baseUrl`; its first cycle has run, and so has the schedule's own first one, so that what follows
 * comes through the fast lane. The caller stops the daemon.
 */
export async function startScriptedDaemon(directory: ScriptedDirectory, opts: { baseUrl: string; prefix: string; extra?: string }) {
  const configPath = writeConfig({
    exportDir: writeExport([]),
    baseUrl: opts.baseUrl,
    prefix: opts.prefix,
    extra: `    schedule: { every: 1h }\n${opts.extra ?? ''}`,
  });
  const config = parseConfig(readFileSync(configPath, 'utf8'), { env: { TVSYNC_TEST_TOKEN: TOKEN } });
  const reports: UserSyncReport[] = [];
  const daemon = await Daemon.start(config, silentLog, {
    scheduler: true,
    worker: true,
    runtime: FAST,
    sourceFor: () => directory,
    onUserSync: (_sync, report) => {
      reports.push(report);
    },
  });
  try {
    await runCycle(daemon);
    await waitFor('no cycle running or waiting', async () => {
      const counts = await daemon.runtime('corp').queues.cycles.getJobCounts('active', 'waiting');
      return (counts.active ?? 0) + (counts.waiting ?? 0) === 0 || undefined;
    });
  } catch (err) {
    await daemon.stop();
    throw err;
  }
  return { daemon, reports, configPath, fastLane: new FastLaneStore(daemon.redis, opts.prefix, 'corp') };
}
