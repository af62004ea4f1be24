import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { DirectoryGroup, DirectoryRead, DirectoryUser } from '../model/directory.js';
import { SourceReadError, type ConnectionCheck, type DirectorySource } from './source.js';
import { CsvError, parseCsv } from './csv.js';

/**
 * A directory export as files: users.{json,csv}, optionally groups.{json,csv} and
 * memberships.{json,csv}. What the demo, many tests and HR exports use. Unlike an API, a file is
 * all-or-nothing: any malformed record fails the read, so a half-written export never deactivates anyone.
 */
export const fileSourceConfigSchema = z.strictObject({
  type: z.literal('file'),
  path: z.string().min(1).describe('directory holding users.json or users.csv (relative to the config file)'),
});
export type FileSourceConfig = z.infer<typeof fileSourceConfigSchema>;

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

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isFile(),
    () => false,
  );
}

/** Reads `<name>.json` or `<name>.csv`, validating every record; undefined when neither exists. */
async function readTable<T>(dir: string, name: string, schema: z.ZodType<T>): Promise<T[] | undefined> {
  const jsonPath = join(dir, `${name}.json`);
  const csvPath = join(dir, `${name}.csv`);
  let rows: { where: string; value: unknown }[];
  if (await exists(jsonPath)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(await readFile(jsonPath, 'utf8'));
    } catch (err) {
      throw new SourceReadError(`${name}.json is not valid JSON: ${(err as Error).message}`);
    }
    if (!Array.isArray(parsed)) throw new SourceReadError(`${name}.json must hold a JSON array of records`);
    rows = parsed.map((value, i) => ({ where: `${name}.json record ${i + 1}`, value }));
  } else if (await exists(csvPath)) {
    try {
      rows = parseCsv(await readFile(csvPath, 'utf8')).map((r) => ({ where: `${name}.csv line ${r.line}`, value: r.values }));
    } catch (err) {
      if (err instanceof CsvError) throw new SourceReadError(`${name}.csv ${err.message}`);
      throw err;
    }
  } else {
    return undefined;
  }
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

export function createFileSource(config: FileSourceConfig): DirectorySource {
  async function read(): Promise<DirectoryRead> {
    const users = await readTable(config.path, 'users', userRecord);
    if (!users) throw new SourceReadError(`no users.json or users.csv in ${config.path}`);
    const groups = (await readTable(config.path, 'groups', groupRecord)) ?? [];
    const memberships = (await readTable(config.path, 'memberships', membershipRecord)) ?? [];

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
      if (!set) throw new SourceReadError(`memberships name group ${m.groupId}, which is not in the groups file`);
      set.add(m.userId);
    }
    const issues: DirectoryRead['issues'] = [];
    const directoryGroups: DirectoryGroup[] = groups.map((g) => {
      const ids = [...(members.get(g.id) ?? [])];
      for (const id of ids.filter((id) => !seen.has(id))) {
        issues.push({ kind: 'membership', objectId: g.id, reason: `group ${g.name} names user ${id}, who is not in the users file; left out` });
      }
      return { id: g.id, name: g.name, memberIds: ids.filter((id) => seen.has(id)).sort() };
    });
    return { users: directoryUsers, groups: directoryGroups, complete: true, issues };
  }

  return {
    kind: 'file',
    read,
    // The export is the whole directory: a group missing from it no longer exists.
    async lookupGroups(ids) {
      return new Map(ids.map((id) => [id, 'deleted' as const]));
    },
    async check(): Promise<ConnectionCheck> {
      try {
        const result = await read();
        return { ok: true, checks: [{ name: 'read export', ok: true, detail: `${result.users.length} users, ${result.groups.length} groups in ${config.path}` }] };
      } catch (err) {
        return { ok: false, checks: [{ name: 'read export', ok: false, detail: (err as Error).message }] };
      }
    },
  };
}
