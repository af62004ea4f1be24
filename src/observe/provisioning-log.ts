import type { ChainableCommander, Redis } from 'ioredis';
import { z } from 'zod';
import type { GroupMember, GroupSkippedItem } from '../plan/group-types.js';
import type { SkippedItem } from '../plan/types.js';
import { OPERATION_KINDS, type OperationKind, type OperationResult } from '../plan/report.js';
import { scrubSecrets } from '../net/secrets.js';
import type { WriteCheck } from '../plan/drift.js';

/** `not-kept`: an earlier write TeamViewer did not keep; `drift`: a change made by hand in TeamViewer (both `reported`). */
export type ProvisioningLogKind = OperationKind | 'skipped' | 'not-kept' | 'drift';
export type ProvisioningLogOutcome = 'applied' | 'failed' | 'cancelled' | 'skipped' | 'reported';

/** One line of a sync's provisioning log: an operation's outcome or a user the plan skipped. */
export interface ProvisioningLogEntry {
  /** ISO timestamp. */
  at: string;
  cycleId: string;
  kind: ProvisioningLogKind;
  outcome: ProvisioningLogOutcome;
  email?: string;
  /** IdP user id (user entries) or group id (group operations). */
  sourceId?: string;
  /** TeamViewer user id (user entries). */
  tvUserId?: string;
  /** Group name (group operations). */
  group?: string;
  /** IdP and TeamViewer group ids (group operations and group skips). */
  sourceGroupId?: string;
  tvGroupId?: string;
  /** Whom a membership operation added or removed: the entry is found by each member's address too. */
  members?: GroupMember[];
  /** The user role and its id (role operations). */
  role?: string;
  roleId?: string;
  /** Skip reason (skipped entries). */
  reason?: string;
  /** Failure class (failed operations). */
  failureClass?: string;
  before?: { displayName: string; active?: boolean };
  after?: { displayName?: string; active?: boolean };
  adopted?: boolean;
  attempts?: number;
  /** Written by the fast lane (a user sync) rather than a cycle: what asked for it. */
  via?: FastLaneOrigin;
  message: string;
}

/** How a fast-lane write came about: the trigger, and for events the feed that named the person. */
export interface FastLaneOrigin {
  lane: 'fast';
  trigger: string;
  feed?: string;
}

export interface ProvisioningLogQuery {
  /** Exact address, any case. */
  email?: string;
  cycleId?: string;
  /** Most entries returned (default 100). */
  limit?: number;
}

/** Where a sync's log lives: a stream and its e-mail index (store/keys.ts names them). */
export interface ProvisioningLogKeys {
  stream: string;
  index: string;
}

export const DEFAULT_MAX_ENTRIES = 100_000;
const DEFAULT_LIMIT = 100;
/** Entries one scan step looks at: a few milliseconds of Redis time, so other clients barely notice. */
const SCAN_CHUNK = 1000;
/** Entries written per script call. */
const WRITE_CHUNK = 250;

/*
 * Reasons and failure classes are plain strings on read: an entry written by a newer version with
 * a reason this one does not know is still worth showing. Kinds and outcomes are closed sets.
 */
const entrySchema = z.object({
  at: z.iso.datetime(),
  cycleId: z.string(),
  kind: z.enum([...OPERATION_KINDS, 'skipped', 'not-kept', 'drift']),
  outcome: z.enum(['applied', 'failed', 'cancelled', 'skipped', 'reported']),
  email: z.string().optional(),
  sourceId: z.string().optional(),
  tvUserId: z.string().optional(),
  group: z.string().optional(),
  sourceGroupId: z.string().optional(),
  tvGroupId: z.string().optional(),
  members: z.array(z.object({ tvUserId: z.string(), sourceId: z.string().optional(), email: z.string().optional() })).optional(),
  role: z.string().optional(),
  roleId: z.string().optional(),
  reason: z.string().optional(),
  failureClass: z.string().optional(),
  before: z.object({ displayName: z.string(), active: z.boolean().optional() }).optional(),
  after: z.object({ displayName: z.string().optional(), active: z.boolean().optional() }).optional(),
  adopted: z.boolean().optional(),
  attempts: z.number().int().nonnegative().optional(),
  via: z.object({ lane: z.literal('fast'), trigger: z.string(), feed: z.string().optional() }).optional(),
  message: z.string(),
});

const querySchema = z.object({
  email: z.string().trim().min(1).optional(),
  cycleId: z.string().min(1).optional(),
  limit: z.number().int().min(1).max(DEFAULT_MAX_ENTRIES).default(DEFAULT_LIMIT),
});

/** What the scan script hands back: [id to go on below ('' at the end of the stream), [[id, [field, value, …]], …]]. */
const scanReplySchema = z.tuple([z.string(), z.array(z.tuple([z.string(), z.array(z.string())]))]);
const xrangeReplySchema = z.array(z.tuple([z.string(), z.array(z.string())]));

/*
 * Index members are `<lower-case e-mail> NUL <stream id, zero-padded>`, all with score 0, so a
 * lexicographic range of one sorted set lists one address's entries in stream order. Stream ids
 * are padded because "5-10" sorts before "5-9" as text. An entry is indexed under each address it
 * names (a membership operation names its members); its `em` field holds them NUL-separated.
 */
const INDEX_SEP = '\0';
const SORTABLE_ID = `
local function sortable(id)
  local ms, seq = string.match(id, '^(%d+)%-(%d+)$')
  return string.rep('0', 16 - #ms) .. ms .. '-' .. string.rep('0', 20 - #seq) .. seq
end
local SEP = string.char(0)
`;

/*
 * Appends entries and keeps the e-mail index in step with the stream: once the stream is
 * `batch` entries over its bound, the oldest entries are read, their index members removed and
 * the stream cut to exactly `max`. Trimming in batches keeps the cost per write small; the
 * index never holds a member for an entry the stream no longer has.
 * KEYS: stream, index. ARGV: max, batch, then (e-mails NUL-separated, cycleId, json) per entry.
 */
const WRITE_SCRIPT = `${SORTABLE_ID}
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('DEL', KEYS[2]) end
for i = 3, #ARGV, 3 do
  local id = redis.call('XADD', KEYS[1], '*', 'em', ARGV[i], 'cy', ARGV[i + 1], 'e', ARGV[i + 2])
  for em in string.gmatch(ARGV[i], '[^%z]+') do redis.call('ZADD', KEYS[2], 0, em .. SEP .. sortable(id)) end
end
local max = tonumber(ARGV[1])
local excess = redis.call('XLEN', KEYS[1]) - max
if excess >= tonumber(ARGV[2]) then
  for _, entry in ipairs(redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', excess)) do
    local fields = entry[2]
    for j = 1, #fields, 2 do
      if fields[j] == 'em' then
        for em in string.gmatch(fields[j + 1], '[^%z]+') do redis.call('ZREM', KEYS[2], em .. SEP .. sortable(entry[1])) end
      end
    end
  end
  redis.call('XTRIM', KEYS[1], 'MAXLEN', max)
end
return 0
`;

const WRITE_COMMAND = 'tvsyncProvisioningLogWrite';
type WithWriteScript = Record<typeof WRITE_COMMAND, (stream: string, index: string, ...args: string[]) => unknown>;

/*
 * Queries without an e-mail read the stream newest-first, SCAN_CHUNK entries per call, and
 * compare the cycle id inside Redis so only matches travel. The newest cycles are found at once;
 * an old cycle among 100k entries costs about a hundred short calls.
 * KEYS: stream. ARGV: start, count, filter on cycle ('0'/'1'), cycle id, limit.
 */
const SCAN_SCRIPT = `
local entries = redis.call('XREVRANGE', KEYS[1], ARGV[1], '-', 'COUNT', ARGV[2])
local limit = tonumber(ARGV[5])
local out = {}
for _, entry in ipairs(entries) do
  local fields = entry[2]
  local cy = ''
  for i = 1, #fields, 2 do
    if fields[i] == 'cy' then cy = fields[i + 1] end
  end
  if ARGV[3] == '0' or cy == ARGV[4] then
    out[#out + 1] = entry
    if #out >= limit then return {entry[1], out} end
  end
end
if #entries < tonumber(ARGV[2]) then return {'', out} end
return {entries[#entries][1], out}
`;

/**
 * Every operation outcome and every skipped user of one sync, kept in a Redis stream
 * (`<prefix>:sync:<name>:provisioning-log`) in the order they happened, cut to about
 * `maxEntries`, with a sorted set (`…:provisioning-log:by-email`) that finds one address's
 * entries without reading the rest. The index is trimmed together with the stream, so it is
 * bounded by the same number.
 */
export class ProvisioningLog {
  readonly key: string;
  readonly indexKey: string;
  private readonly maxEntries: number;
  /** How far over the bound the stream may grow before it is cut back (1% of it, at most 1000). */
  private readonly trimBatch: number;
  /** Sees every entry as it is written (the audit stream), whether or not Redis takes it. */
  private readonly onWrite: ((entries: readonly ProvisioningLogEntry[]) => void) | undefined;
  private readonly waiting: { entries: readonly ProvisioningLogEntry[]; resolve: () => void; reject: (err: unknown) => void }[] = [];
  private writing = false;

  constructor(
    private readonly redis: Redis,
    keys: ProvisioningLogKeys,
    opts: { maxEntries?: number; onWrite?: (entries: readonly ProvisioningLogEntry[]) => void } = {},
  ) {
    this.onWrite = opts.onWrite;
    // Registered once per connection; every log on it shares the command.
    if (!(WRITE_COMMAND in redis)) redis.defineCommand(WRITE_COMMAND, { numberOfKeys: 2, lua: WRITE_SCRIPT });
    this.key = keys.stream;
    this.indexKey = keys.index;
    this.maxEntries = Math.max(1, Math.floor(opts.maxEntries ?? DEFAULT_MAX_ENTRIES));
    this.trimBatch = Math.min(WRITE_CHUNK, Math.max(1, Math.floor(this.maxEntries / 100)));
  }

  async recordResult(cycleId: string, result: OperationResult, atMs: number = Date.now(), via?: FastLaneOrigin): Promise<void> {
    await this.recordResults(cycleId, [result], atMs, via);
  }

  /** Outcomes recorded together (one write of the OutcomeLedger): one entry each, written in one call. */
  async recordResults(cycleId: string, results: readonly OperationResult[], atMs: number = Date.now(), via?: FastLaneOrigin): Promise<void> {
    const at = new Date(atMs).toISOString();
    await this.writeMany(results.map((result) => this.entryOf(cycleId, result, at, via)));
  }

  private entryOf(cycleId: string, result: OperationResult, at: string, via: FastLaneOrigin | undefined): ProvisioningLogEntry {
    const entry: ProvisioningLogEntry = {
      at,
      cycleId,
      kind: result.kind,
      outcome: result.status,
      sourceId: result.sourceId,
      after: result.after,
      attempts: result.attempts,
      message: result.message,
    };
    if (result.email !== undefined) entry.email = result.email;
    if (result.group !== undefined) entry.group = result.group;
    if (result.sourceGroupId !== undefined) entry.sourceGroupId = result.sourceGroupId;
    if (result.tvGroupId !== undefined) entry.tvGroupId = result.tvGroupId;
    if (result.members !== undefined) entry.members = result.members;
    if (result.role !== undefined) entry.role = result.role;
    if (result.roleId !== undefined) entry.roleId = result.roleId;
    if (result.tvUserId !== undefined) entry.tvUserId = result.tvUserId;
    if (result.before !== undefined) entry.before = result.before;
    if (result.failureClass !== undefined) entry.failureClass = result.failureClass;
    if (result.adopted) entry.adopted = true;
    if (via) entry.via = via;
    return entry;
  }

  async recordSkipped(cycleId: string, items: readonly SkippedItem[], atMs: number = Date.now()): Promise<void> {
    const at = new Date(atMs).toISOString();
    const entries = items.map((item) => {
      const entry: ProvisioningLogEntry = { at, cycleId, kind: 'skipped', outcome: 'skipped', reason: item.reason, message: item.message };
      if (item.email !== undefined) entry.email = item.email;
      if (item.sourceId !== undefined) entry.sourceId = item.sourceId;
      if (item.tvUserId !== undefined) entry.tvUserId = item.tvUserId;
      return entry;
    });
    await this.writeMany(entries);
  }

  /** Groups the group phase left alone (member not provisioned, name taken, …). */
  async recordGroupSkipped(cycleId: string, items: readonly GroupSkippedItem[], atMs: number = Date.now()): Promise<void> {
    const at = new Date(atMs).toISOString();
    const entries = items.map((item) => {
      const entry: ProvisioningLogEntry = { at, cycleId, kind: 'skipped', outcome: 'skipped', reason: item.reason, message: item.message };
      if (item.sourceGroupId !== undefined) entry.sourceGroupId = item.sourceGroupId;
      if (item.tvGroupId !== undefined) entry.tvGroupId = item.tvGroupId;
      if (item.sourceUserId !== undefined) entry.sourceId = item.sourceUserId;
      if (item.email !== undefined) entry.email = item.email;
      return entry;
    });
    await this.writeMany(entries);
  }

  /** Writes not kept and hand-made changes a plan found (reason: their kind), each before the plan sets it right. */
  async recordWriteCheck(cycleId: string, check: WriteCheck | undefined, atMs: number = Date.now()): Promise<void> {
    if (!check) return;
    const at = new Date(atMs).toISOString();
    const entries = [
      ...check.notKept.map((item) => ({ item, kind: 'not-kept' as const })),
      ...check.drift.map((item) => ({ item, kind: 'drift' as const })),
    ].map(({ item, kind }) => {
      const entry: ProvisioningLogEntry = { at, cycleId, kind, outcome: 'reported', reason: item.kind, message: item.message };
      if (item.email !== undefined) entry.email = item.email;
      if (item.tvUserId !== undefined) entry.tvUserId = item.tvUserId;
      if (item.group !== undefined) entry.group = item.group;
      if (item.tvGroupId !== undefined) entry.tvGroupId = item.tvGroupId;
      if (item.memberIds?.length) entry.members = item.memberIds.map((tvUserId) => ({ tvUserId }));
      return entry;
    });
    await this.writeMany(entries);
  }

  /**
   * Writes go out at once; entries that arrive while a write is under way (operations finishing
   * together) go out together in the next one. Each caller's promise settles when its entries are
   * in Redis, so nothing is acknowledged before it is kept.
   */
  private writeMany(entries: readonly ProvisioningLogEntry[]): Promise<void> {
    if (entries.length === 0) return Promise.resolve();
    this.onWrite?.(entries);
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ entries, resolve, reject });
      if (this.writing) return;
      // The first write starts after this tick: outcomes recorded together (see OutcomeLedger) go in one call.
      this.writing = true;
      setImmediate(() => void this.drain());
    });
  }

  private async drain(): Promise<void> {
    while (this.waiting.length > 0) {
      const batch = this.waiting.splice(0);
      try {
        await this.write(batch.flatMap((w) => w.entries));
        for (const w of batch) w.resolve();
      } catch (err) {
        for (const w of batch) w.reject(err);
      }
    }
    this.writing = false;
  }

  private async write(entries: readonly ProvisioningLogEntry[]): Promise<void> {
    // One script call per WRITE_CHUNK entries, pipelined: 100k skips are a hundred calls, each a few ms of Redis time.
    // The script is sent once per connection and called by its hash after (EVALSHA).
    const pipeline = this.redis.pipeline() as ChainableCommander & WithWriteScript;
    for (let start = 0; start < entries.length; start += WRITE_CHUNK)
      pipeline[WRITE_COMMAND](this.key, this.indexKey, ...this.writeArgs(entries.slice(start, start + WRITE_CHUNK)));
    const replies = await pipeline.exec();
    const failed = replies?.find(([err]) => err);
    if (failed?.[0]) throw failed[0];
  }

  /** Matching entries, newest first; entries that do not parse are left out. */
  async query(q: ProvisioningLogQuery = {}): Promise<ProvisioningLogEntry[]> {
    const { email, cycleId, limit } = querySchema.parse(q);
    return email === undefined ? this.scan(cycleId, limit) : this.byEmail(email.toLowerCase(), cycleId, limit);
  }

  private writeArgs(entries: readonly ProvisioningLogEntry[]): string[] {
    const args = [String(this.maxEntries), String(this.trimBatch)];
    // Messages may quote what TeamViewer or an IdP said: scrubbed again before they are kept.
    for (const entry of entries) {
      const emails = indexEmails(entry);
      // The cycle id, and an address that is all the index holds, are in fields of their own: not kept twice.
      const indexOnly = entry.members === undefined && emails === entry.email;
      // Every field of the entry is kept; JSON leaves out the ones set to undefined here.
      const kept: Partial<ProvisioningLogEntry> = { ...entry, cycleId: undefined, message: scrubSecrets(entry.message) };
      if (indexOnly) kept.email = undefined;
      args.push(emails, entry.cycleId, JSON.stringify(kept));
    }
    return args;
  }

  private async byEmail(email: string, cycleId: string | undefined, limit: number): Promise<ProvisioningLogEntry[]> {
    const found: ProvisioningLogEntry[] = [];
    const min = `[${email}${INDEX_SEP}`;
    let max = `(${email}\u0001`;
    for (;;) {
      // With a cycle filter most members may not match: read the index in larger steps.
      const count = cycleId === undefined ? limit - found.length : SCAN_CHUNK;
      const members = await this.redis.zrevrangebylex(this.indexKey, max, min, 'LIMIT', 0, count);
      if (members.length === 0) return found;
      const pipeline = this.redis.pipeline();
      for (const member of members) {
        const id = streamId(member.slice(email.length + INDEX_SEP.length));
        if (id) pipeline.xrange(this.key, id, id);
      }
      for (const [err, reply] of (await pipeline.exec()) ?? []) {
        if (err) throw err;
        const parsed = xrangeReplySchema.safeParse(reply);
        // An id the stream no longer has (cut by hand, say) simply matches nothing.
        const fields = parsed.success ? parsed.data[0]?.[1] : undefined;
        const entry = fields ? parseEntry(fields) : undefined;
        if (entry && (cycleId === undefined || entry.cycleId === cycleId)) found.push(entry);
        if (found.length >= limit) return found;
      }
      if (members.length < count) return found;
      max = `(${members[members.length - 1] ?? ''}`;
    }
  }

  private async scan(cycleId: string | undefined, limit: number): Promise<ProvisioningLogEntry[]> {
    const found: ProvisioningLogEntry[] = [];
    let start = '+';
    for (;;) {
      const raw = await this.redis.eval(
        SCAN_SCRIPT,
        1,
        this.key,
        start,
        String(SCAN_CHUNK),
        cycleId === undefined ? '0' : '1',
        cycleId ?? '',
        String(limit - found.length),
      );
      const reply = scanReplySchema.safeParse(raw);
      if (!reply.success) throw new Error(`unexpected answer from Redis reading ${this.key}`);
      const [next, matches] = reply.data;
      for (const [, fields] of matches) {
        const entry = parseEntry(fields);
        if (entry) found.push(entry);
      }
      if (found.length >= limit || next === '') return found;
      // Exclusive start: the next step begins just below the last entry looked at.
      start = `(${next}`;
    }
  }
}

/** The addresses an entry is indexed under, NUL-separated. */
function indexEmails(entry: ProvisioningLogEntry): string {
  // A NUL would split the address in the index; such an address is not indexed.
  const usable = (email: string | undefined): email is string => !!email && !email.includes(INDEX_SEP);
  if (!entry.members) return usable(entry.email) ? entry.email.toLowerCase() : '';
  const emails = new Set<string>();
  for (const email of [entry.email, ...entry.members.map((m) => m.email)]) if (usable(email)) emails.add(email.toLowerCase());
  return [...emails].join(INDEX_SEP);
}

/** The stream id of an index member's padded id ("0000001700000000000-00000000000000000003" → "1700000000000-3"). */
function streamId(padded: string): string | undefined {
  const match = /^(\d+)-(\d+)$/.exec(padded);
  if (!match?.[1] || !match[2]) return undefined;
  const strip = (digits: string) => digits.replace(/^0+(?=\d)/, '');
  return `${strip(match[1])}-${strip(match[2])}`;
}

function parseEntry(fields: readonly string[]): ProvisioningLogEntry | undefined {
  // Field names sit at even positions; a value that happens to be 'e' is not one.
  const named = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) named.set(fields[i] ?? '', fields[i + 1] ?? '');
  return decode(named.get('e'), named.get('cy'), named.get('em'));
}

/** An entry's JSON, with what was kept only in the stream's own fields put back (entries written before carry both). */
function decode(text: string | undefined, cycleId: string | undefined, emails: string | undefined): ProvisioningLogEntry | undefined {
  if (text === undefined) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (json && typeof json === 'object') {
    const entry = json as Record<string, unknown>;
    if (entry.cycleId === undefined && cycleId !== undefined) entry.cycleId = cycleId;
    if (entry.email === undefined && entry.members === undefined && emails && !emails.includes(INDEX_SEP)) entry.email = emails;
  }
  const parsed = entrySchema.safeParse(json);
  return parsed.success ? parsed.data : undefined;
}
