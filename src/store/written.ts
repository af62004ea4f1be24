import type { Redis } from 'ioredis';
import type { WrittenGroup, WrittenMember, WrittenRecords, WrittenUpdates, WrittenUser } from '../plan/drift.js';
import { syncKeys, type KeyPrefix } from './keys.js';

/**
 * What tvsync's writes left TeamViewer objects in, kept compact for 100k users: a user is a hash
 * field `<tvUserId>` → `<active 0|1><seen 0|1><displayName>`; a group `<tvGroupId>` → small JSON;
 * a member `<tvUserId>` → `<in 0|1><seen 0|1>` in its group's own hash. No secret, no address.
 */
export interface WrittenStore {
  load(): Promise<WrittenRecords>;
  loadUsers(): Promise<Map<string, WrittenUser>>;
  loadGroups(): Promise<Map<string, WrittenGroup>>;
  apply(updates: WrittenUpdates): Promise<void>;
}

/** Fields written per HSET: one command stays small at 100k records. */
const CHUNK = 1000;

export function packUser(user: WrittenUser): string {
  return `${user.active ? 1 : 0}${user.seen ? 1 : 0}${user.displayName}`;
}

export function unpackUser(value: string): WrittenUser | undefined {
  if (value.length < 2 || !/^[01][01]/.test(value)) return undefined;
  return { active: value[0] === '1', seen: value[1] === '1', displayName: value.slice(2) };
}

function packMember(member: WrittenMember): string {
  return `${member.in ? 1 : 0}${member.seen ? 1 : 0}`;
}

function unpackMember(value: string): WrittenMember | undefined {
  return /^[01][01]$/.test(value) ? { in: value[0] === '1', seen: value[1] === '1' } : undefined;
}

function packGroup(group: Omit<WrittenGroup, 'members'>): string {
  return JSON.stringify({ ...(group.displayName !== undefined ? { n: group.displayName } : {}), c: group.created ? 1 : 0, s: group.seen ? 1 : 0 });
}

function unpackGroup(value: string): Omit<WrittenGroup, 'members'> | undefined {
  try {
    const parsed: unknown = JSON.parse(value);
    if (!parsed || typeof parsed !== 'object') return undefined;
    const { n, c, s } = parsed as Record<string, unknown>;
    if ((n !== undefined && typeof n !== 'string') || (c !== 0 && c !== 1) || (s !== 0 && s !== 1)) return undefined;
    return { ...(typeof n === 'string' ? { displayName: n } : {}), created: c === 1, seen: s === 1 };
  } catch {
    // A record we cannot read is no record: nothing is reported for it.
    return undefined;
  }
}

const NO_NAME: Omit<WrittenGroup, 'members'> = { created: false, seen: true };

export class RedisWrittenStore implements WrittenStore {
  private readonly keys: ReturnType<typeof syncKeys>['written'];

  constructor(
    private readonly redis: Redis,
    prefix: KeyPrefix,
    syncName: string,
  ) {
    this.keys = syncKeys(prefix, syncName).written;
  }

  async load(): Promise<WrittenRecords> {
    const [users, groups] = await Promise.all([this.loadUsers(), this.loadGroups()]);
    return { users, groups };
  }

  async loadUsers(): Promise<Map<string, WrittenUser>> {
    const out = new Map<string, WrittenUser>();
    for (const [id, value] of Object.entries(await this.redis.hgetall(this.keys.users))) {
      const user = unpackUser(value);
      if (user) out.set(id, user);
    }
    return out;
  }

  async loadGroups(): Promise<Map<string, WrittenGroup>> {
    const raw = Object.entries(await this.redis.hgetall(this.keys.groups));
    if (raw.length === 0) return new Map();
    const pipeline = this.redis.pipeline();
    for (const [id] of raw) pipeline.hgetall(this.keys.members(id));
    const replies = (await pipeline.exec()) ?? [];
    const out = new Map<string, WrittenGroup>();
    raw.forEach(([id, value], i) => {
      const group = unpackGroup(value);
      const [err, fields] = replies[i] ?? [];
      if (err) throw err;
      if (!group) return;
      const members = new Map<string, WrittenMember>();
      for (const [userId, packed] of Object.entries((fields ?? {}) as Record<string, string>)) {
        const member = unpackMember(packed);
        if (member) members.set(userId, member);
      }
      out.set(id, { ...group, members });
    });
    return out;
  }

  async apply(updates: WrittenUpdates): Promise<void> {
    const tx = this.redis.pipeline();
    let commands = 0;
    const hset = (key: string, entries: [string, string][]) => {
      for (let i = 0; i < entries.length; i += CHUNK) {
        tx.hset(key, Object.fromEntries(entries.slice(i, i + CHUNK)));
        commands++;
      }
    };
    const hdel = (key: string, fields: string[]) => {
      for (let i = 0; i < fields.length; i += CHUNK) {
        tx.hdel(key, ...fields.slice(i, i + CHUNK));
        commands++;
      }
    };
    hset(
      this.keys.users,
      updates.users.set.map(([id, user]) => [id, packUser(user)]),
    );
    hdel(this.keys.users, updates.users.drop);
    hset(
      this.keys.groups,
      updates.groups.set.map(([id, group]) => [id, packGroup(group)]),
    );
    for (const members of updates.members) {
      // A member record needs its group's entry, which is how the group's members are found.
      tx.hsetnx(this.keys.groups, members.tvGroupId, packGroup(NO_NAME));
      hset(
        this.keys.members(members.tvGroupId),
        members.set.map(([id, member]) => [id, packMember(member)]),
      );
      hdel(this.keys.members(members.tvGroupId), members.drop);
      commands++;
    }
    hdel(this.keys.groups, updates.groups.drop);
    for (const id of updates.groups.drop) {
      tx.del(this.keys.members(id));
      commands++;
    }
    if (commands === 0) return;
    const replies = await tx.exec();
    const failed = replies?.find(([err]) => err);
    if (failed?.[0]) throw failed[0];
  }
}

/** For tests and runs without Redis: the same records in memory. */
export class MemoryWrittenStore implements WrittenStore {
  private readonly users = new Map<string, WrittenUser>();
  private readonly groups = new Map<string, WrittenGroup>();

  async load(): Promise<WrittenRecords> {
    return { users: await this.loadUsers(), groups: await this.loadGroups() };
  }
  async loadUsers(): Promise<Map<string, WrittenUser>> {
    return new Map([...this.users].map(([id, u]) => [id, { ...u }]));
  }
  async loadGroups(): Promise<Map<string, WrittenGroup>> {
    return new Map([...this.groups].map(([id, g]) => [id, { ...g, members: new Map(g.members) }]));
  }
  async apply(updates: WrittenUpdates): Promise<void> {
    for (const [id, user] of updates.users.set) this.users.set(id, { ...user });
    for (const id of updates.users.drop) this.users.delete(id);
    for (const [id, group] of updates.groups.set) this.groups.set(id, { ...group, members: this.groups.get(id)?.members ?? new Map() });
    for (const { tvGroupId, set, drop } of updates.members) {
      const group = this.groups.get(tvGroupId) ?? { ...NO_NAME, members: new Map<string, WrittenMember>() };
      this.groups.set(tvGroupId, group);
      for (const [id, member] of set) group.members.set(id, { ...member });
      for (const id of drop) group.members.delete(id);
    }
    for (const id of updates.groups.drop) this.groups.delete(id);
  }
}
