import { createHash } from 'node:crypto';
import { z } from 'zod';
import { formatDuration } from '../../units/duration.js';
import type { DirectoryGroup, DirectoryIssue, DirectoryRead, DirectoryUser, UserLookup } from '../../model/directory.js';
import { payloadReason } from '../../net/payload.js';
import type { ChangeFeed } from '../changes.js';
import { SourceReadError, type ConnectionCheck, type DirectorySource, type ReadOptions, type SourceDeps, type SourceStateStore } from '../source.js';
import { createExportFeed } from './feed.js';
import type { FileSourceOptions } from './config.js';
import { CsvError, parseCsv } from './csv.js';
import { manifestFileProblems, mismatch, parseManifest } from './manifest.js';
import { MANIFEST, stableFiles, tableFiles, type Table } from './stable-read.js';

/**
 * A directory export as files: users.{json,csv}, optionally groups.{json,csv} and
 * memberships.{json,csv}, and the manifest.json the exporter writes last. What the demo, many
 * tests and HR exports use. A file is read only once it holds still, any malformed record fails
 * the read, and only an export its manifest vouches for counts as whole: a file cut short or
 * caught half-rewritten never deactivates anyone.
 */
export function createFileSource(config: FileSourceOptions, deps: Partial<Pick<SourceDeps, 'state'>> = {}): DirectorySource {
  const dir = config.path;
  const settle = config.settle ?? 2000;
  const manifestRule = config.manifest ?? 'optional';
  const readWhole = (opts?: ReadOptions) => readExport(dir, settle, manifestRule, opts);
  const changes = config.changes?.export ?? { enabled: true, every: 5000 };
  let feed: ChangeFeed | undefined;

  return {
    kind: 'file',
    read: async (opts) => (await readWhole(opts)).read,
    readUser: async (ref, opts) => lookupUser((await readWhole(opts)).read, dir, ref),
    async changeFeed() {
      if (!changes.enabled) return undefined;
      // Without the sync's state store (tvsync plan, older callers) the fingerprint lives as long as the source.
      feed ??= createExportFeed({
        dir,
        every: changes.every,
        state: deps.state ?? memoryState(),
        readDigest: async (signal) => (await readWhole(signal ? { signal } : {})).digest,
      });
      return feed;
    },
    // The export is the whole directory: a group missing from it no longer exists.
    async lookupGroups(ids) {
      return new Map(ids.map((id) => [id, 'deleted' as const]));
    },
    async check(): Promise<ConnectionCheck> {
      try {
        const { read, vouched, attempts } = await readWhole();
        const parts = [`${read.users.length} users, ${read.groups.length} groups in ${dir}`];
        const retried = attempts > 1 ? ` after ${attempts - 1} change(s) seen` : '';
        parts.push(settle > 0 ? `files unchanged for ${formatDuration(settle)} and while read${retried}` : `files unchanged while read${retried}`);
        parts.push(
          vouched
            ? `${MANIFEST} matches ${vouched.join(', ')}`
            : `no ${MANIFEST}: the export cannot be shown to be whole, so nothing is deactivated or removed on its account`,
        );
        if (read.groupsComplete === false) parts.push('no groups file: groups and their members are left alone');
        return { ok: true, checks: [{ name: 'read export', ok: true, detail: parts.join('; ') }] };
      } catch (err) {
        return { ok: false, checks: [{ name: 'read export', ok: false, detail: (err as Error).message }] };
      }
    },
  };
}

const RECORD_KIND: Record<Table, { kind: DirectoryIssue['kind']; idField: string }> = {
  users: { kind: 'user', idField: 'id' },
  groups: { kind: 'group', idField: 'id' },
  memberships: { kind: 'membership', idField: 'groupId' },
};

const flag = z.union([
  z.boolean(),
  z
    .string()
    .trim()
    .toLowerCase()
    .refine((v) => ['', 'true', 'false', '1', '0', 'yes', 'no', 'active', 'inactive', 'enabled', 'disabled'].includes(v), 'expected true/false')
    .transform((v) => v === '' || ['true', '1', 'yes', 'active', 'enabled'].includes(v)),
]);
const optionalText = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v));

const FLAG_WORDS = new Set(['', 'true', 'false', '1', '0', 'yes', 'no', 'active', 'inactive', 'enabled', 'disabled']);
const TRUE_WORDS = new Set(['', 'true', '1', 'yes', 'active', 'enabled']);
const USER_TEXT_FIELDS = ['email', 'displayName', 'formattedName', 'givenName', 'familyName', 'preferredLanguage'] as const;

type UserRecord = z.output<typeof userRecord>;

/**
 * A user record as userRecord parses it, checked by hand, or undefined for the schema to look at
 * (which then names what is wrong): an export of 100,000 people went through the schema in
 * 150 ms, most of the file source's read. It never accepts what the schema refuses.
 */
export function quickUserRecord(value: unknown): UserRecord | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const record = value as Record<string, unknown>;
  let id: string;
  if (typeof record.id === 'string') {
    id = record.id.trim();
    if (id.length === 0) return undefined;
  } else if (typeof record.id === 'number' && Number.isFinite(record.id)) id = String(record.id);
  else return undefined;
  let active: boolean;
  if (record.active === undefined) active = true;
  else if (typeof record.active === 'boolean') active = record.active;
  else if (typeof record.active === 'string') {
    const word = record.active.trim().toLowerCase();
    if (!FLAG_WORDS.has(word)) return undefined;
    active = TRUE_WORDS.has(word);
  } else return undefined;
  // A text field left out reads as undefined, as the schema gives it.
  const user = { id, active } as UserRecord;
  for (const key of USER_TEXT_FIELDS) {
    const text = record[key];
    if (text === undefined) continue;
    if (typeof text !== 'string') return undefined;
    if (text.trim() !== '') user[key] = text;
  }
  return user;
}

export const userRecord = z.object({
  id: z.union([z.string().trim().min(1), z.number()]).transform(String),
  email: optionalText,
  displayName: optionalText,
  formattedName: optionalText,
  givenName: optionalText,
  familyName: optionalText,
  active: flag.optional().default(true),
  preferredLanguage: optionalText,
});
const groupRecord = z.object({
  id: z.union([z.string().trim().min(1), z.number()]).transform(String),
  name: z.string().trim().min(1),
  members: z.array(z.union([z.string(), z.number()]).transform(String)).optional(),
});
const membershipRecord = z.object({
  groupId: z.union([z.string().trim().min(1), z.number()]).transform(String),
  userId: z.union([z.string().trim().min(1), z.number()]).transform(String),
});

interface ParsedFile {
  name: string;
  /** The records as parsed, before validation. */
  values: unknown[];
  /** Where record `index` is, for a message: made only when one is wrong. */
  where: (index: number) => string;
  /** The last record runs to the end of the file with no line break after it: it may be cut. */
  unterminated: boolean;
}

function parseFile(name: string, bytes: Buffer): ParsedFile {
  const text = bytes.toString('utf8');
  if (name.endsWith('.json')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new SourceReadError(`${name} is not valid JSON (${(err as Error).message}); a file cut short or still being written reads like this`);
    }
    if (!Array.isArray(parsed)) throw new SourceReadError(`${name} must hold a JSON array of records`);
    return { name, values: parsed, where: (i) => `${name} record ${i + 1}`, unterminated: false };
  }
  let records: ReturnType<typeof parseCsv>;
  try {
    records = parseCsv(text);
  } catch (err) {
    if (err instanceof CsvError) throw new SourceReadError(`${name} ${err.message}`);
    throw err;
  }
  const tail = text.slice(Math.max(text.lastIndexOf('\n'), text.lastIndexOf('\r')) + 1);
  return {
    name,
    values: records.map((r) => r.values),
    where: (i) => `${name} line ${records[i]?.line ?? '?'}`,
    unterminated: records.length > 0 && tail.trim() !== '',
  };
}

function validate<T>(file: ParsedFile | undefined, schema: z.ZodType<T>, quick?: (value: unknown) => T | undefined): T[] {
  if (!file) return [];
  return file.values.map((value, i) => {
    const checked = quick?.(value);
    if (checked !== undefined) return checked;
    const result = schema.safeParse(value);
    if (!result.success) throw new SourceReadError(`${file.where(i)}: ${payloadReason(result.error)}`);
    return result.data;
  });
}

interface ExportRead {
  read: DirectoryRead;
  /** sha256 over the names and bytes of the files read: the same export read twice has the same digest. */
  digest: string;
  /** The manifest matched these files; undefined when there was none. */
  vouched?: string[];
  attempts: number;
}

export async function readExport(dir: string, settle: number, manifestRule: 'required' | 'optional', opts: ReadOptions = {}): Promise<ExportRead> {
  const { files, attempts } = await stableFiles(dir, settle, opts.signal);
  const names = tableFiles(files);
  const usersFile = names.get('users');
  if (!usersFile) throw new SourceReadError(`no users.json or users.csv in ${dir}`);

  const manifestBytes = files.get(MANIFEST);
  const manifest = manifestBytes ? parseManifest(manifestBytes) : undefined;
  if (!manifest && manifestRule === 'required') {
    throw new SourceReadError(
      `no ${MANIFEST} in ${dir}, and the file source is set to manifest: required; the exporter must write ${MANIFEST} last, listing every file it wrote`,
    );
  }
  // Checksums first: a cut file is better named as cut than by the parse error it causes.
  if (manifest) {
    const problems = manifestFileProblems(manifest, files);
    if (problems.length > 0) throw mismatch(dir, problems);
  }
  const parsed = new Map<Table, ParsedFile>();
  for (const [table, name] of names) {
    const bytes = files.get(name);
    if (bytes) parsed.set(table, parseFile(name, bytes));
  }
  if (manifest) {
    const problems = [...parsed.values()].flatMap(({ name, values }) => {
      const expected = manifest.files[name]?.records;
      return expected !== undefined && expected !== values.length ? [`${name} holds ${values.length} records, ${MANIFEST} says ${expected}`] : [];
    });
    if (problems.length > 0) throw mismatch(dir, problems);
  }

  // Without a manifest, a last record not followed by a line break may be cut inside a field
  // (an address, an id): it is set aside rather than acted on.
  const issues: DirectoryIssue[] = [];
  const cut: string[] = [];
  const setAside = new Set<Table>();
  for (const [table, file] of parsed) {
    if (manifest || !file.unterminated) continue;
    const last = file.values.pop() as Record<string, unknown> | undefined;
    setAside.add(table);
    const { kind, idField } = RECORD_KIND[table];
    issues.push({
      kind,
      ...idOf(last?.[idField]),
      reason: `the last record of ${file.name} may be cut (no line break after it, no ${MANIFEST}); left out this cycle`,
    });
    cut.push(`${file.name} does not end with a line break, so its last record may be cut and was left out`);
  }

  const users = validate(parsed.get('users'), userRecord, quickUserRecord);
  const groups = validate(parsed.get('groups'), groupRecord);
  const memberships = validate(parsed.get('memberships'), membershipRecord);

  const seen = new Set<string>();
  const directoryUsers: DirectoryUser[] = users.map((u) => {
    if (seen.has(u.id)) throw new SourceReadError(`user id ${u.id} appears twice in the users file`);
    seen.add(u.id);
    const user: DirectoryUser = { id: u.id, active: u.active };
    for (const key of USER_TEXT_FIELDS) {
      const value = u[key];
      if (value !== undefined) user[key] = value;
    }
    return user;
  });

  const members = new Map<string, Set<string>>(groups.map((g) => [g.id, new Set(g.members ?? [])]));
  for (const m of memberships) {
    const set = members.get(m.groupId);
    if (set) set.add(m.userId);
    // The group may be the record set aside, its id cut with it.
    else if (setAside.has('groups'))
      issues.push({
        kind: 'membership',
        objectId: m.groupId,
        reason: `membership of user ${m.userId} in group ${m.groupId}, which is not in the groups file; left out`,
      });
    else throw new SourceReadError(`memberships name group ${m.groupId}, which is not in the groups file`);
  }
  const directoryGroups: DirectoryGroup[] = groups.map((g) => {
    const ids = [...(members.get(g.id) ?? [])];
    for (const id of ids.filter((id) => !seen.has(id))) {
      issues.push({ kind: 'membership', objectId: g.id, reason: `group ${g.name} names user ${id}, who is not in the users file; left out` });
    }
    return { id: g.id, name: g.name, memberIds: ids.filter((id) => seen.has(id)).sort() };
  });

  const read: DirectoryRead = { users: directoryUsers, groups: directoryGroups, complete: manifest !== undefined, issues };
  if (!manifest) {
    read.incompleteReason = [`the export in ${dir} has no ${MANIFEST}, so it cannot be shown to be whole; have the exporter write one last`, ...cut].join('; ');
  }
  // No groups file says nothing about groups: not that there are none.
  if (!names.has('groups')) {
    read.groupsComplete = false;
    read.groupsIncompleteReason = `the export in ${dir} has no groups.json or groups.csv, so it says nothing about groups; write an empty groups file when there are none`;
  }
  const hash = createHash('sha256');
  for (const name of [...files.keys()].sort()) hash.update(`${name}\0${files.get(name)?.length ?? 0}\0`).update(files.get(name) ?? Buffer.alloc(0));
  return { read, digest: hash.digest('hex'), vouched: manifest ? [...files.keys()].filter((n) => n !== MANIFEST) : undefined, attempts };
}

/**
 * One person in the export. Only an export shown to be whole answers: a person missing from it is
 * then out of scope; from any other export the answer would be a guess, so the read fails.
 */
function lookupUser(read: DirectoryRead, dir: string, ref: string): UserLookup {
  if (!read.complete)
    throw new SourceReadError(`one user is not read from an export that cannot be shown to be whole: ${read.incompleteReason ?? 'incomplete'}`);
  const wanted = ref.trim();
  let user = read.users.find((u) => u.id === wanted);
  if (!user && wanted.includes('@')) {
    const matches = read.users.filter((u) => u.email?.toLowerCase() === wanted.toLowerCase());
    if (matches.length > 1) throw new SourceReadError(`${matches.length} users in the export have that address; name the user by id`);
    user = matches[0];
  }
  if (!user) return { status: 'out-of-scope', why: `not in the export in ${dir}` };
  const id = user.id;
  const groups = read.groups.filter((g) => g.memberIds.includes(id)).map((g) => ({ id: g.id, name: g.name }));
  const inactive = user.active ? '' : '; marked inactive in the export';
  return { status: 'in-scope', user, groups, groupsComplete: read.groupsComplete !== false, why: `in the export in ${dir}${inactive}` };
}

/** State kept in memory, for callers without the sync's store. */
function memoryState(): SourceStateStore {
  const values = new Map<string, string>();
  return {
    get: async (key) => values.get(key),
    set: async (key, value) => void values.set(key, value),
    delete: async (key) => void values.delete(key),
  };
}

/** The id of a record set aside, when it has a usable one. */
function idOf(value: unknown): { objectId?: string } {
  const id = typeof value === 'number' ? String(value) : typeof value === 'string' ? value.trim() : '';
  return id ? { objectId: id } : {};
}
