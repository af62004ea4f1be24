import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { DeactivationRecord } from '../plan/recycled.js';
import type { LinkChange, OutsideCompanyRecord } from '../plan/types.js';
import { madeKey, type MadeRoleAssignment } from '../plan/roles.js';
import type { SourceStateStore } from '../connectors/source.js';
import { syncKeys, type KeyPrefix } from './keys.js';
import { MemoryStateStore } from './memory-state.js';

/**
 * What one sync remembers between cycles: which IdP object is which TeamViewer user (TeamViewer
 * keeps no externalId), which addresses are owned outside the company, and the connector's own
 * state. Every key lives under `<prefix>:sync:<name>:` so syncs never see each other's state.
 */
export interface SyncState {
  /** False for the in-memory state of `tvsync plan` without Redis: links are then unknown. */
  readonly durable: boolean;
  readonly source: SourceStateStore;
  loadLinks(): Promise<Map<string, string>>;
  /** One person's link, for the fast lane (which must not load every link per event). */
  getLink(sourceId: string): Promise<string | undefined>;
  /** The links of these IdP users, in one round trip; one without a link is absent from the answer. */
  getLinks(sourceIds: readonly string[]): Promise<Map<string, string>>;
  /** How many users the sync links to: the sliding-window threshold's base. */
  linkCount(): Promise<number>;
  setLink(sourceId: string, tvUserId: string): Promise<void>;
  /** Several links in one write (the outcomes of creates written together). */
  setLinks(links: readonly (readonly [sourceId: string, tvUserId: string])[]): Promise<void>;
  applyLinkChanges(changes: readonly LinkChange[]): Promise<void>;
  /** IdP group id → TeamViewer group id. */
  loadGroupLinks(): Promise<Map<string, string>>;
  setGroupLink(sourceGroupId: string, tvGroupId: string): Promise<void>;
  /** Drops a group link if it still points at this TeamViewer group. */
  dropGroupLink(sourceGroupId: string, tvGroupId: string): Promise<void>;
  loadOutsideCompany(): Promise<Map<string, OutsideCompanyRecord>>;
  getOutsideCompany(emailKey: string): Promise<OutsideCompanyRecord | undefined>;
  recordOutsideCompany(emailKey: string, record: OutsideCompanyRecord): Promise<void>;
  clearOutsideCompany(emailKey: string): Promise<void>;
  /**
   * TeamViewer users tvsync deactivated, with the IdP id they were linked to: a new IdP user
   * matching one by e-mail is a recycled address. Kept when the link goes; forgotten when tvsync
   * reactivates the user.
   */
  loadDeactivated(): Promise<Map<string, DeactivationRecord>>;
  getDeactivated(tvUserId: string): Promise<DeactivationRecord | undefined>;
  recordDeactivated(tvUserId: string, record: DeactivationRecord): Promise<void>;
  clearDeactivated(tvUserId: string): Promise<void>;
  /** The role assignments tvsync made: only these are ever taken back. */
  loadRoleAssignments(): Promise<MadeRoleAssignment[]>;
  recordRoleAssignments(records: readonly MadeRoleAssignment[], atMs: number): Promise<void>;
  forgetRoleAssignments(records: readonly MadeRoleAssignment[]): Promise<void>;
}

/** A record's hash field back into the record; a field tvsync did not write is ignored. */
function parseMadeKey(field: string): MadeRoleAssignment | undefined {
  const [roleId, target, id, ...rest] = field.split('|');
  if (rest.length > 0 || !roleId || !id || (target !== 'usergroup' && target !== 'account')) return undefined;
  return { roleId, target, id };
}

/** HRANDFIELD's count for a whole hash: more fields than any hash tvsync keeps. */
const WHOLE_HASH = 2_147_483_647;

/** Fields asked for in one HMGET: a bounded command, however many links are asked for. */
const LINKS_PER_READ = 10_000;

const DROP_IF_UNCHANGED = `if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end return 0`;

export class RedisSyncState implements SyncState {
  readonly durable = true;
  readonly source: SourceStateStore;
  private readonly links: string;
  private readonly groupLinks: string;
  private readonly outside: string;
  private readonly roleAssignments: string;
  private readonly deactivated: string;
  private flatHashReads = true;

  constructor(
    private readonly redis: Redis,
    prefix: KeyPrefix,
    syncName: string,
  ) {
    const keys = syncKeys(prefix, syncName);
    this.links = keys.links;
    this.groupLinks = keys.groupLinks;
    this.outside = keys.outsideCompany;
    this.roleAssignments = keys.roleAssignments;
    this.deactivated = keys.deactivated;
    const sourceKey = keys.source;
    this.source = {
      get: async (key) => (await redis.get(sourceKey(key))) ?? undefined,
      set: async (key, value) => {
        await redis.set(sourceKey(key), value);
      },
      delete: async (key) => {
        await redis.del(sourceKey(key));
      },
    };
  }

  async loadLinks(): Promise<Map<string, string>> {
    const pairs = await this.wholeHash(this.links);
    const links = new Map<string, string>();
    for (let i = 0; i + 1 < pairs.length; i += 2) links.set(pairs[i] as string, pairs[i + 1] as string);
    return links;
  }

  /**
   * Every field and value of a hash, as one flat list. ioredis turns an HGETALL reply into an
   * object first, which for 100,000 links cost more than reading them; HRANDFIELD with a count
   * above the hash's size is documented to answer every field once, in one atomic read like
   * HGETALL's, as a flat list. A server without it (before Redis 6.2) is sent HGETALL.
   */
  private async wholeHash(key: string): Promise<string[]> {
    if (this.flatHashReads) {
      try {
        return (await this.redis.hrandfield(key, WHOLE_HASH, 'WITHVALUES')) as string[];
      } catch (err) {
        if (!/unknown command/i.test(err instanceof Error ? err.message : String(err))) throw err;
        this.flatHashReads = false;
      }
    }
    return Object.entries(await this.redis.hgetall(key)).flat();
  }

  async getLink(sourceId: string): Promise<string | undefined> {
    return (await this.redis.hget(this.links, sourceId)) ?? undefined;
  }

  async getLinks(sourceIds: readonly string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (let from = 0; from < sourceIds.length; from += LINKS_PER_READ) {
      const ids = sourceIds.slice(from, from + LINKS_PER_READ);
      const values = await this.redis.hmget(this.links, ...ids);
      ids.forEach((id, i) => {
        const value = values[i];
        if (value != null) out.set(id, value);
      });
    }
    return out;
  }

  linkCount(): Promise<number> {
    return this.redis.hlen(this.links);
  }

  async setLink(sourceId: string, tvUserId: string): Promise<void> {
    await this.redis.hset(this.links, sourceId, tvUserId);
  }

  async setLinks(links: readonly (readonly [sourceId: string, tvUserId: string])[]): Promise<void> {
    if (links.length) await this.redis.hset(this.links, ...links.flat());
  }

  async applyLinkChanges(changes: readonly LinkChange[]): Promise<void> {
    if (changes.length === 0) return;
    const relinked = new Set(changes.filter((c) => c.action === 'set').map((c) => c.sourceId));
    const tx = this.redis.multi();
    for (const change of changes) {
      if (change.action === 'set') tx.hset(this.links, change.sourceId, change.tvUserId);
      // A drop only removes the link if it still points where the plan saw it.
      else if (!relinked.has(change.sourceId)) tx.eval(DROP_IF_UNCHANGED, 1, this.links, change.sourceId, change.tvUserId);
    }
    await tx.exec();
  }

  async loadGroupLinks(): Promise<Map<string, string>> {
    return new Map(Object.entries(await this.redis.hgetall(this.groupLinks)));
  }

  async setGroupLink(sourceGroupId: string, tvGroupId: string): Promise<void> {
    await this.redis.hset(this.groupLinks, sourceGroupId, tvGroupId);
  }

  async dropGroupLink(sourceGroupId: string, tvGroupId: string): Promise<void> {
    await this.redis.eval(DROP_IF_UNCHANGED, 1, this.groupLinks, sourceGroupId, tvGroupId);
  }

  async loadOutsideCompany(): Promise<Map<string, OutsideCompanyRecord>> {
    const raw = await this.redis.hgetall(this.outside);
    const out = new Map<string, OutsideCompanyRecord>();
    for (const [key, value] of Object.entries(raw)) {
      const parsed = parseOutside(value);
      if (parsed) out.set(key, parsed);
    }
    return out;
  }

  async getOutsideCompany(emailKey: string): Promise<OutsideCompanyRecord | undefined> {
    const raw = await this.redis.hget(this.outside, emailKey);
    return raw === null ? undefined : parseOutside(raw);
  }

  async recordOutsideCompany(emailKey: string, record: OutsideCompanyRecord): Promise<void> {
    await this.redis.hset(this.outside, emailKey, JSON.stringify(record));
  }

  async clearOutsideCompany(emailKey: string): Promise<void> {
    await this.redis.hdel(this.outside, emailKey);
  }

  async loadRoleAssignments(): Promise<MadeRoleAssignment[]> {
    const fields = await this.redis.hkeys(this.roleAssignments);
    return fields.map(parseMadeKey).filter((r): r is MadeRoleAssignment => r !== undefined);
  }

  async recordRoleAssignments(records: readonly MadeRoleAssignment[], atMs: number): Promise<void> {
    if (records.length === 0) return;
    await this.redis.hset(this.roleAssignments, Object.fromEntries(records.map((r) => [madeKey(r), String(atMs)])));
  }

  async forgetRoleAssignments(records: readonly MadeRoleAssignment[]): Promise<void> {
    if (records.length === 0) return;
    await this.redis.hdel(this.roleAssignments, ...records.map(madeKey));
  }

  async loadDeactivated(): Promise<Map<string, DeactivationRecord>> {
    const out = new Map<string, DeactivationRecord>();
    for (const [tvUserId, value] of Object.entries(await this.redis.hgetall(this.deactivated))) {
      const parsed = parseDeactivated(value);
      if (parsed) out.set(tvUserId, parsed);
    }
    return out;
  }

  async getDeactivated(tvUserId: string): Promise<DeactivationRecord | undefined> {
    const raw = await this.redis.hget(this.deactivated, tvUserId);
    return raw === null ? undefined : parseDeactivated(raw);
  }

  async recordDeactivated(tvUserId: string, record: DeactivationRecord): Promise<void> {
    await this.redis.hset(this.deactivated, tvUserId, JSON.stringify({ sourceId: record.sourceId, atMs: record.atMs }));
  }

  async clearDeactivated(tvUserId: string): Promise<void> {
    await this.redis.hdel(this.deactivated, tvUserId);
  }
}

const deactivatedSchema = z.object({ sourceId: z.string().min(1), atMs: z.number().int().nonnegative() });

/** A record that cannot be read counts as none: the link table still catches an address it links. */
function parseDeactivated(value: string): DeactivationRecord | undefined {
  try {
    const parsed = deactivatedSchema.safeParse(JSON.parse(value));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

function parseOutside(value: string): OutsideCompanyRecord | undefined {
  try {
    const parsed: unknown = JSON.parse(value);
    if (
      parsed &&
      typeof parsed === 'object' &&
      'atMs' in parsed &&
      typeof parsed.atMs === 'number' &&
      'message' in parsed &&
      typeof parsed.message === 'string'
    ) {
      return { atMs: parsed.atMs, message: parsed.message };
    }
  } catch {
    // A record we cannot read only means the address is tried again; not worth failing a cycle.
  }
  return undefined;
}

export class MemorySyncState implements SyncState {
  readonly durable = false;
  readonly source = new MemoryStateStore();
  private readonly links = new Map<string, string>();
  private readonly groupLinks = new Map<string, string>();
  private readonly outside = new Map<string, OutsideCompanyRecord>();
  private readonly deactivated = new Map<string, DeactivationRecord>();

  async loadLinks(): Promise<Map<string, string>> {
    return new Map(this.links);
  }
  async getLink(sourceId: string): Promise<string | undefined> {
    return this.links.get(sourceId);
  }
  async getLinks(sourceIds: readonly string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const id of sourceIds) {
      const value = this.links.get(id);
      if (value !== undefined) out.set(id, value);
    }
    return out;
  }
  async linkCount(): Promise<number> {
    return this.links.size;
  }
  async setLink(sourceId: string, tvUserId: string): Promise<void> {
    this.links.set(sourceId, tvUserId);
  }
  async setLinks(links: readonly (readonly [sourceId: string, tvUserId: string])[]): Promise<void> {
    for (const [sourceId, tvUserId] of links) this.links.set(sourceId, tvUserId);
  }
  async applyLinkChanges(changes: readonly LinkChange[]): Promise<void> {
    for (const change of changes) {
      if (change.action === 'set') this.links.set(change.sourceId, change.tvUserId);
      else if (this.links.get(change.sourceId) === change.tvUserId && !changes.some((c) => c.action === 'set' && c.sourceId === change.sourceId)) {
        this.links.delete(change.sourceId);
      }
    }
  }
  async loadGroupLinks(): Promise<Map<string, string>> {
    return new Map(this.groupLinks);
  }
  async setGroupLink(sourceGroupId: string, tvGroupId: string): Promise<void> {
    this.groupLinks.set(sourceGroupId, tvGroupId);
  }
  async dropGroupLink(sourceGroupId: string, tvGroupId: string): Promise<void> {
    if (this.groupLinks.get(sourceGroupId) === tvGroupId) this.groupLinks.delete(sourceGroupId);
  }
  async loadOutsideCompany(): Promise<Map<string, OutsideCompanyRecord>> {
    return new Map(this.outside);
  }
  async getOutsideCompany(emailKey: string): Promise<OutsideCompanyRecord | undefined> {
    return this.outside.get(emailKey);
  }
  async recordOutsideCompany(emailKey: string, record: OutsideCompanyRecord): Promise<void> {
    this.outside.set(emailKey, record);
  }
  async clearOutsideCompany(emailKey: string): Promise<void> {
    this.outside.delete(emailKey);
  }
  private readonly roles = new Set<string>();
  async loadRoleAssignments(): Promise<MadeRoleAssignment[]> {
    return [...this.roles].map(parseMadeKey).filter((r): r is MadeRoleAssignment => r !== undefined);
  }
  async recordRoleAssignments(records: readonly MadeRoleAssignment[]): Promise<void> {
    for (const record of records) this.roles.add(madeKey(record));
  }
  async forgetRoleAssignments(records: readonly MadeRoleAssignment[]): Promise<void> {
    for (const record of records) this.roles.delete(madeKey(record));
  }
  async loadDeactivated(): Promise<Map<string, DeactivationRecord>> {
    return new Map(this.deactivated);
  }
  async getDeactivated(tvUserId: string): Promise<DeactivationRecord | undefined> {
    return this.deactivated.get(tvUserId);
  }
  async recordDeactivated(tvUserId: string, record: DeactivationRecord): Promise<void> {
    this.deactivated.set(tvUserId, record);
  }
  async clearDeactivated(tvUserId: string): Promise<void> {
    this.deactivated.delete(tvUserId);
  }
}
