import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, renameSync, writeSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { durationBetween, formatDuration } from '../config/duration.js';
import type { DirectoryGroup, DirectoryIssue, DirectoryRead, DirectoryUser } from '../model/directory.js';
import { SourceReadError, type ConnectionCheck, type DirectorySource, type ReadOptions } from './source.js';
import { CsvError, parseCsv } from './csv.js';

/**
 * A directory export as files: users.{json,csv}, optionally groups.{json,csv} and
 * memberships.{json,csv}, and the manifest.json the exporter writes last. What the demo, many
 * tests and HR exports use. A file is read only once it holds still, any malformed record fails
 * the read, and only an export its manifest vouches for counts as whole: a file cut short or
 * caught half-rewritten never deactivates anyone.
 */
export const fileSourceConfigSchema = z.strictObject({
  type: z.literal('file'),
  path: z.string().min(1).describe('directory holding users.json or users.csv (relative to the config file)'),
  manifest: z
    .enum(['required', 'optional'])
    .default('optional')
    .describe('required: an export without manifest.json is not read; optional: it is read, but nothing is deactivated or removed on its account'),
  settle: durationBetween(0, 60_000).default(2000).describe('the files must keep their size and modification time this long before they are read'),
});
export type FileSourceConfig = z.infer<typeof fileSourceConfigSchema>;
export type FileSourceOptions = Pick<FileSourceConfig, 'path'> & Partial<Pick<FileSourceConfig, 'type' | 'manifest' | 'settle'>>;

const TABLES = ['users', 'groups', 'memberships'] as const;
type Table = (typeof TABLES)[number];
const MANIFEST = 'manifest.json';
const CANDIDATES = [...TABLES.flatMap((t) => [`${t}.json`, `${t}.csv`]), MANIFEST];
const RECORD_KIND: Record<Table, { kind: DirectoryIssue['kind']; idField: string }> = {
  users: { kind: 'user', idField: 'id' },
  groups: { kind: 'group', idField: 'id' },
  memberships: { kind: 'membership', idField: 'groupId' },
};
/** Observations of a file that keeps changing before the read gives up for this cycle. */
const STABILITY_ATTEMPTS = 5;

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

const userRecord = z.object({
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

const manifestEntry = z
  .strictObject({
    records: z.number().int().nonnegative().optional(),
    sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, 'expected 64 hexadecimal digits').optional(),
  })
  .refine((e) => e.records !== undefined || e.sha256 !== undefined, 'give records, sha256 or both');
const manifestSchema = z.object({ files: z.record(z.string(), manifestEntry) });
type Manifest = z.infer<typeof manifestSchema>;

type Observation = Map<string, { size: number; mtimeMs: number; ino: number }>;

/** Size, modification time and inode of the export's files that are present. */
async function observe(dir: string): Promise<Observation> {
  const seen: Observation = new Map();
  await Promise.all(
    CANDIDATES.map(async (name) => {
      try {
        const s = await stat(join(dir, name));
        if (s.isFile()) seen.set(name, { size: s.size, mtimeMs: s.mtimeMs, ino: s.ino });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT' && code !== 'ENOTDIR') throw new SourceReadError(`cannot read ${join(dir, name)} (${code ?? 'error'})`, err);
      }
    }),
  );
  return seen;
}

/** The first file that appeared, went or changed between two observations. */
function changedFile(a: Observation, b: Observation): string | undefined {
  return CANDIDATES.find((name) => {
    const x = a.get(name);
    const y = b.get(name);
    if (!x || !y) return x !== y;
    return x.size !== y.size || x.mtimeMs !== y.mtimeMs || x.ino !== y.ino;
  });
}

/** The file each table is read from: JSON before CSV. */
function tableFiles(present: { has(name: string): boolean }): Map<Table, string> {
  const files = new Map<Table, string>();
  for (const table of TABLES) {
    const name = [`${table}.json`, `${table}.csv`].find((n) => present.has(n));
    if (name) files.set(table, name);
  }
  return files;
}

/**
 * One attempt at the export's bytes: every file unchanged across the settle time and across the
 * read, and read to the length it had. A writer still at work shows up as a change.
 */
async function snapshot(dir: string, settle: number, signal?: AbortSignal): Promise<{ files: Map<string, Buffer> } | { changed: string }> {
  let before = await observe(dir);
  if (settle > 0) {
    await sleep(settle, undefined, { signal });
    const later = await observe(dir);
    const changed = changedFile(before, later);
    if (changed) return { changed };
    before = later;
  }
  const names = [...tableFiles(before).values(), ...(before.has(MANIFEST) ? [MANIFEST] : [])];
  const files = new Map<string, Buffer>();
  for (const name of names) {
    try {
      files.set(name, await readFile(join(dir, name)));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return { changed: name };
      throw new SourceReadError(`cannot read ${join(dir, name)} (${code ?? 'error'})`, err);
    }
  }
  const after = await observe(dir);
  const changed = changedFile(before, after) ?? names.find((name) => files.get(name)?.length !== before.get(name)?.size);
  return changed ? { changed } : { files };
}

interface ParsedFile {
  name: string;
  rows: { where: string; value: unknown }[];
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
    return { name, rows: parsed.map((value, i) => ({ where: `${name} record ${i + 1}`, value })), unterminated: false };
  }
  let records;
  try {
    records = parseCsv(text);
  } catch (err) {
    if (err instanceof CsvError) throw new SourceReadError(`${name} ${err.message}`);
    throw err;
  }
  const tail = text.slice(Math.max(text.lastIndexOf('\n'), text.lastIndexOf('\r')) + 1);
  return {
    name,
    rows: records.map((r) => ({ where: `${name} line ${r.line}`, value: r.values })),
    unterminated: records.length > 0 && tail.trim() !== '',
  };
}

function validate<T>(rows: ParsedFile['rows'], schema: z.ZodType<T>): T[] {
  return rows.map(({ where, value }) => {
    const result = schema.safeParse(value);
    if (!result.success) {
      const problem = result.error.issues[0];
      const field = problem?.path.join('.') || 'record';
      throw new SourceReadError(`${where}: ${field}: ${problem?.message ?? 'invalid'}`);
    }
    return result.data;
  });
}

function parseManifest(bytes: Buffer): Manifest {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new SourceReadError(`${MANIFEST} is not valid JSON (${(err as Error).message})`);
  }
  const result = manifestSchema.safeParse(parsed);
  if (!result.success) {
    const problem = result.error.issues[0];
    throw new SourceReadError(`${MANIFEST}: ${problem?.path.join('.') || 'top level'}: ${problem?.message ?? 'invalid'}`);
  }
  return result.data;
}

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

/** What differs between the files read and what the manifest lists: files and checksums. */
function manifestFileProblems(manifest: Manifest, files: Map<string, Buffer>): string[] {
  const problems: string[] = [];
  for (const [name, bytes] of files) {
    if (name === MANIFEST) continue;
    const entry = manifest.files[name];
    if (!entry) problems.push(`${name} is not listed in ${MANIFEST}`);
    else if (entry.sha256 !== undefined && sha256(bytes) !== entry.sha256.toLowerCase()) {
      problems.push(`${name} (${bytes.length} bytes) does not have the sha256 ${MANIFEST} gives for it`);
    }
  }
  for (const name of Object.keys(manifest.files)) {
    if (files.has(name)) continue;
    const known = CANDIDATES.includes(name) ? '' : ' (tvsync reads users, groups and memberships as .json or .csv)';
    problems.push(`${MANIFEST} lists ${name}, which is not in the export${known}`);
  }
  return problems;
}

function mismatch(dir: string, problems: string[]): SourceReadError {
  return new SourceReadError(
    `the export in ${dir} does not match its ${MANIFEST}: ${problems.join('; ')}. It is cut short, being rewritten, or mixed with another export; ` +
      'nothing is changed this cycle. The exporter must write every file first and manifest.json last, each under a temporary name renamed into place',
  );
}

interface ExportRead {
  read: DirectoryRead;
  /** The manifest matched these files; undefined when there was none. */
  vouched?: string[];
  attempts: number;
}

export function createFileSource(config: FileSourceOptions): DirectorySource {
  const dir = config.path;
  const settle = config.settle ?? 2000;
  const manifestRule = config.manifest ?? 'optional';

  async function stableFiles(signal?: AbortSignal): Promise<{ files: Map<string, Buffer>; attempts: number }> {
    const started = Date.now();
    let changed = '';
    for (let attempt = 1; attempt <= STABILITY_ATTEMPTS; attempt++) {
      const result = await snapshot(dir, settle, signal);
      if ('files' in result) return { files: result.files, attempts: attempt };
      changed = result.changed;
      if (attempt < STABILITY_ATTEMPTS) await sleep(Math.max(settle, 100), undefined, { signal });
    }
    throw new SourceReadError(
      `${join(dir, changed)} kept changing while tvsync read it (${STABILITY_ATTEMPTS} tries over ${((Date.now() - started) / 1000).toFixed(1)}s); nothing is changed this cycle. ` +
        'The exporter must write each file under a temporary name in the same directory and rename it into place when done; tvsync tries again next cycle',
    );
  }

  async function readExport(opts: ReadOptions = {}): Promise<ExportRead> {
    const { files, attempts } = await stableFiles(opts.signal);
    const names = tableFiles(files);
    const usersFile = names.get('users');
    if (!usersFile) throw new SourceReadError(`no users.json or users.csv in ${dir}`);

    const manifestBytes = files.get(MANIFEST);
    const manifest = manifestBytes ? parseManifest(manifestBytes) : undefined;
    if (!manifest && manifestRule === 'required') {
      throw new SourceReadError(`no ${MANIFEST} in ${dir}, and the file source is set to manifest: required; the exporter must write ${MANIFEST} last, listing every file it wrote`);
    }
    // Checksums first: a cut file is better named as cut than by the parse error it causes.
    if (manifest) {
      const problems = manifestFileProblems(manifest, files);
      if (problems.length > 0) throw mismatch(dir, problems);
    }
    const parsed = new Map<Table, ParsedFile>();
    for (const [table, name] of names) parsed.set(table, parseFile(name, files.get(name)!));
    if (manifest) {
      const problems = [...parsed.values()].flatMap(({ name, rows }) => {
        const expected = manifest.files[name]?.records;
        return expected !== undefined && expected !== rows.length ? [`${name} holds ${rows.length} records, ${MANIFEST} says ${expected}`] : [];
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
      const last = file.rows.pop()?.value as Record<string, unknown> | undefined;
      setAside.add(table);
      const { kind, idField } = RECORD_KIND[table];
      issues.push({ kind, ...idOf(last?.[idField]), reason: `the last record of ${file.name} may be cut (no line break after it, no ${MANIFEST}); left out this cycle` });
      cut.push(`${file.name} does not end with a line break, so its last record may be cut and was left out`);
    }

    const users = validate(parsed.get('users')!.rows, userRecord);
    const groups = validate(parsed.get('groups')?.rows ?? [], groupRecord);
    const memberships = validate(parsed.get('memberships')?.rows ?? [], membershipRecord);

    const seen = new Set<string>();
    const directoryUsers: DirectoryUser[] = users.map((u) => {
      if (seen.has(u.id)) throw new SourceReadError(`user id ${u.id} appears twice in the users file`);
      seen.add(u.id);
      const user: DirectoryUser = { id: u.id, active: u.active };
      for (const key of ['email', 'displayName', 'formattedName', 'givenName', 'familyName', 'preferredLanguage'] as const) {
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
      else if (setAside.has('groups')) issues.push({ kind: 'membership', objectId: m.groupId, reason: `membership of user ${m.userId} in group ${m.groupId}, which is not in the groups file; left out` });
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
    return { read, vouched: manifest ? [...files.keys()].filter((n) => n !== MANIFEST) : undefined, attempts };
  }

  return {
    kind: 'file',
    read: async (opts) => (await readExport(opts)).read,
    // The export is the whole directory: a group missing from it no longer exists.
    async lookupGroups(ids) {
      return new Map(ids.map((id) => [id, 'deleted' as const]));
    },
    async check(): Promise<ConnectionCheck> {
      try {
        const { read, vouched, attempts } = await readExport();
        const parts = [`${read.users.length} users, ${read.groups.length} groups in ${dir}`];
        const retried = attempts > 1 ? ` after ${attempts - 1} change(s) seen` : '';
        parts.push(settle > 0 ? `files unchanged for ${formatDuration(settle)} and while read${retried}` : `files unchanged while read${retried}`);
        parts.push(vouched ? `${MANIFEST} matches ${vouched.join(', ')}` : `no ${MANIFEST}: the export cannot be shown to be whole, so nothing is deactivated or removed on its account`);
        if (read.groupsComplete === false) parts.push('no groups file: groups and their members are left alone');
        return { ok: true, checks: [{ name: 'read export', ok: true, detail: parts.join('; ') }] };
      } catch (err) {
        return { ok: false, checks: [{ name: 'read export', ok: false, detail: (err as Error).message }] };
      }
    },
  };
}

/**
 * Writes an export the way the file source expects one (README, "Writing an export"): each file
 * under a temporary name in the same directory, flushed and renamed into place, then a
 * manifest.json with every file's record count and sha256, written the same way, last.
 */
export function writeFileExport(dir: string, files: Record<string, string>): void {
  const manifest: Manifest = { files: {} };
  for (const [name, text] of Object.entries(files)) {
    const records = name.endsWith('.json') ? (JSON.parse(text) as unknown[]).length : parseCsv(text).length;
    manifest.files[name] = { records, sha256: sha256(Buffer.from(text)) };
    writeRenamed(dir, name, text);
  }
  writeRenamed(dir, MANIFEST, `${JSON.stringify(manifest, null, 2)}\n`);
}

function writeRenamed(dir: string, name: string, text: string): void {
  const temporary = join(dir, `.${name}.${process.pid}.tmp`);
  const fd = openSync(temporary, 'w');
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, join(dir, name));
}

/** The id of a record set aside, when it has a usable one. */
function idOf(value: unknown): { objectId?: string } {
  const id = typeof value === 'number' ? String(value) : typeof value === 'string' ? value.trim() : '';
  return id ? { objectId: id } : {};
}
