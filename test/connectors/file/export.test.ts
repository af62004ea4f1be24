import { createHash } from 'node:crypto';
import { appendFileSync, mkdtempSync, readdirSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SourceReadError } from '../../../src/connectors/source.js';
import { fileSourceConfigSchema, type FileSourceOptions } from '../../../src/connectors/file/config.js';
import { writeFileExport } from '../../../src/connectors/file/manifest.js';
import { createFileSource } from '../../../src/connectors/file/source.js';
import type { TvUser } from '../../../src/model/teamviewer.js';
import { computePlan } from '../../../src/plan/diff.js';

/**
 * Exports as exporters really leave them: cut at a line or inside a field, rewritten while read,
 * with a manifest that no longer matches. None of them may be read as a whole directory.
 */

const USERS_HEADER = 'id,email,displayName\n';
const userLine = (i: number) => `u${i},user${i}@corp.example,User ${i}\n`;
const usersCsv = (n: number) => USERS_HEADER + Array.from({ length: n }, (_, i) => userLine(i + 1)).join('');
const usersJson = (n: number) =>
  `${JSON.stringify(
    Array.from({ length: n }, (_, i) => ({ id: `u${i + 1}`, email: `user${i + 1}@corp.example` })),
    null,
    1,
  )}\n`;
const GROUPS = 'id,name\ng1,Support\ng2,Sales\n';
const membershipsCsv = (n: number) => `groupId,userId\n${Array.from({ length: n }, (_, i) => `g${(i % 2) + 1},u${i + 1}\n`).join('')}`;

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const dataRecords = (name: string, text: string) =>
  name.endsWith('.json') ? (JSON.parse(text) as unknown[]).length : text.split('\n').filter((l) => l.trim() !== '').length - 1;

/** The manifest an honest exporter writes for these files: records and sha256 of each. */
function manifestFor(files: Record<string, string>): string {
  return JSON.stringify({
    files: Object.fromEntries(Object.entries(files).map(([name, text]) => [name, { records: dataRecords(name, text), sha256: sha256(text) }])),
  });
}

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function dirWith(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'tvsync-export-'));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

const source = (path: string, opts: Partial<FileSourceOptions> = {}) => createFileSource({ path, settle: 0, ...opts });

describe('an export cut short', () => {
  it('a users.csv cut at a line boundary, without a manifest, is read but not as whole', async () => {
    const read = await source(dirWith({ 'users.csv': usersCsv(25), 'groups.csv': GROUPS })).read();
    expect(read.users).toHaveLength(25);
    expect(read.complete).toBe(false);
    expect(read.incompleteReason).toMatch(/no manifest\.json, so it cannot be shown to be whole/);
  });

  it('a users.csv cut at a line boundary fails the read against a manifest that says 30', async () => {
    const whole = { 'users.csv': usersCsv(30), 'groups.csv': GROUPS };
    const manifest = manifestFor(whole);
    await expect(source(dirWith({ ...whole, 'users.csv': usersCsv(25), 'manifest.json': manifest })).read()).rejects.toThrow(
      /users\.csv \(\d+ bytes\) does not have the sha256 manifest\.json gives for it/,
    );
    // A manifest that gives only counts catches it by the count.
    const countsOnly = JSON.stringify({ files: { 'users.csv': { records: 30 }, 'groups.csv': { records: 2 } } });
    const read = source(dirWith({ ...whole, 'users.csv': usersCsv(25), 'manifest.json': countsOnly })).read();
    await expect(read).rejects.toThrow(SourceReadError);
    await expect(read).rejects.toThrow(/users\.csv holds 25 records, manifest\.json says 30/);
  });

  it('a users.csv cut inside a field is not read as whole, and the cut record is not used', async () => {
    // Cut inside a field before the last column: the short line fails the read.
    const whole = usersCsv(30);
    const cutEarly = whole.slice(0, whole.indexOf('user30@') + 'user30@corp.exam'.length);
    await expect(source(dirWith({ 'users.csv': cutEarly, 'groups.csv': GROUPS })).read()).rejects.toThrow(/users\.csv line 31: expected 3 fields/);

    // Cut inside the last column: the line parses, but the address is wrong.
    const lines = Array.from({ length: 30 }, (_, i) => `u${i + 1},User ${i + 1},user${i + 1}@corp.example\n`).join('');
    const cutLast = `id,displayName,email\n${lines}`.slice(0, -'ple\n'.length);
    expect(cutLast.endsWith('u30,User 30,user30@corp.exam')).toBe(true);
    const read = await source(dirWith({ 'users.csv': cutLast, 'groups.csv': GROUPS })).read();
    expect(read.complete).toBe(false);
    expect(read.incompleteReason).toMatch(/users\.csv does not end with a line break, so its last record may be cut/);
    expect(read.users).toHaveLength(29);
    expect(read.users.map((u) => u.email)).not.toContain('user30@corp.exam');
    expect(read.issues).toContainEqual(expect.objectContaining({ kind: 'user', objectId: 'u30' }));

    // Against a manifest of the whole file, the same bytes fail the read.
    const manifest = manifestFor({ 'users.csv': `id,displayName,email\n${lines}`, 'groups.csv': GROUPS });
    await expect(source(dirWith({ 'users.csv': cutLast, 'groups.csv': GROUPS, 'manifest.json': manifest })).read()).rejects.toThrow(/users\.csv/);
  });

  it('a memberships or groups CSV cut inside its last field: the record is set aside, not acted on', async () => {
    // "g2,u12" cut to "g2,u1": read as is, it would put u1 in Sales.
    const memberships = membershipsCsv(12).slice(0, -'2\n'.length);
    const read = await source(dirWith({ 'users.csv': usersCsv(30), 'groups.csv': GROUPS, 'memberships.csv': memberships })).read();
    expect(read.complete).toBe(false);
    expect(read.groups.find((g) => g.id === 'g2')?.memberIds).toEqual(['u10', 'u2', 'u4', 'u6', 'u8']);
    expect(read.issues).toContainEqual(expect.objectContaining({ kind: 'membership', objectId: 'g2', reason: expect.stringContaining('may be cut') }));

    // A group whose id is cut: its memberships are left out with it, not a failed read.
    const groups = 'name,id\nSupport,g1\nSales,g2'; // "Sales,g22" cut short
    const cutGroup = await source(dirWith({ 'users.csv': usersCsv(4), 'groups.csv': groups, 'memberships.csv': 'groupId,userId\ng1,u1\ng22,u2\n' })).read();
    expect(cutGroup.complete).toBe(false);
    expect(cutGroup.groups).toEqual([{ id: 'g1', name: 'Support', memberIds: ['u1'] }]);
    expect(cutGroup.issues.map((i) => [i.kind, i.objectId])).toEqual([
      ['group', 'g2'],
      ['membership', 'g22'],
    ]);
  });

  it('a truncated memberships file fails the read against the manifest, instead of stripping members', async () => {
    const whole = { 'users.csv': usersCsv(30), 'groups.csv': GROUPS, 'memberships.csv': membershipsCsv(30) };
    const dir = dirWith({ ...whole, 'manifest.json': manifestFor(whole), 'memberships.csv': membershipsCsv(12) });
    await expect(source(dir).read()).rejects.toThrow(/does not match its manifest\.json: memberships\.csv/);
    const countsOnly = JSON.stringify({ files: { 'users.csv': { records: 30 }, 'groups.csv': { records: 2 }, 'memberships.csv': { records: 30 } } });
    writeFileSync(join(dir, 'manifest.json'), countsOnly);
    await expect(source(dir).read()).rejects.toThrow(/memberships\.csv holds 12 records, manifest\.json says 30/);
  });

  it('a file whose bytes differ from the manifest checksum fails the read, even with the right count', async () => {
    const whole = { 'users.csv': usersCsv(30), 'groups.csv': GROUPS };
    const changed = usersCsv(30).replace('user7@corp.example', 'user7@corp.exampel');
    const read = source(dirWith({ ...whole, 'users.csv': changed, 'manifest.json': manifestFor(whole) })).read();
    await expect(read).rejects.toThrow(/users\.csv \(\d+ bytes\) does not have the sha256/);
    await expect(read).rejects.toThrow(/nothing is changed this cycle/);
  });

  it('a file the manifest does not list, or one it lists that is missing, fails the read', async () => {
    const listed = { 'users.csv': usersCsv(30), 'groups.csv': GROUPS };
    await expect(source(dirWith({ ...listed, 'memberships.csv': membershipsCsv(4), 'manifest.json': manifestFor(listed) })).read()).rejects.toThrow(
      /memberships\.csv is not listed in manifest\.json/,
    );
    await expect(source(dirWith({ 'users.csv': listed['users.csv'], 'manifest.json': manifestFor(listed) })).read()).rejects.toThrow(
      /manifest\.json lists groups\.csv, which is not in the export/,
    );
  });

  it('refuses a manifest that is not JSON, or lists a file with neither count nor checksum', async () => {
    const users = usersCsv(3);
    await expect(source(dirWith({ 'users.csv': users, 'manifest.json': '{"files": {"users.csv": {"records": 3}' })).read()).rejects.toThrow(
      /manifest\.json is not valid JSON/,
    );
    await expect(source(dirWith({ 'users.csv': users, 'manifest.json': '{"files": {"users.csv": {}}}' })).read()).rejects.toThrow(
      /manifest\.json: files\.users\.csv: give records, sha256 or both/,
    );
  });

  it('manifest: required fails the read of an export without one', async () => {
    const read = source(dirWith({ 'users.csv': usersCsv(30), 'groups.csv': GROUPS }), { manifest: 'required' }).read();
    await expect(read).rejects.toThrow(SourceReadError);
    await expect(read).rejects.toThrow(/no manifest\.json in .*, and the file source is set to manifest: required/);
  });

  it('JSON: a users.json cut at a record boundary is not whole without a manifest, and fails against one', async () => {
    const noManifest = await source(dirWith({ 'users.json': usersJson(25), 'groups.json': '[]\n' })).read();
    expect(noManifest.users).toHaveLength(25);
    expect(noManifest.complete).toBe(false);
    const whole = { 'users.json': usersJson(30), 'groups.json': '[]\n' };
    await expect(source(dirWith({ ...whole, 'users.json': usersJson(25), 'manifest.json': manifestFor(whole) })).read()).rejects.toThrow(/users\.json/);
    const countsOnly = JSON.stringify({ files: { 'users.json': { records: 30 }, 'groups.json': { records: 0 } } });
    await expect(source(dirWith({ ...whole, 'users.json': usersJson(25), 'manifest.json': countsOnly })).read()).rejects.toThrow(
      /users\.json holds 25 records, manifest\.json says 30/,
    );
  });

  it('JSON: a users.json cut inside a record fails the read', async () => {
    const text = usersJson(30);
    await expect(source(dirWith({ 'users.json': text.slice(0, text.indexOf('user17@') + 5) })).read()).rejects.toThrow(/users\.json is not valid JSON/);
  });
});

describe('groups', () => {
  it('an export without a groups file says nothing about groups: groupsComplete false', async () => {
    const users = { 'users.csv': usersCsv(30) };
    const read = await source(dirWith({ ...users, 'manifest.json': manifestFor(users) })).read();
    expect(read.complete).toBe(true);
    expect(read.groups).toEqual([]);
    expect(read.groupsComplete).toBe(false);
    expect(read.groupsIncompleteReason).toMatch(/no groups\.json or groups\.csv, so it says nothing about groups/);
  });

  it('an empty groups file says there are none', async () => {
    const files = { 'users.csv': usersCsv(3), 'groups.csv': 'id,name\n' };
    const read = await source(dirWith({ ...files, 'manifest.json': manifestFor(files) })).read();
    expect(read.complete).toBe(true);
    expect(read.groupsComplete).not.toBe(false);
  });

  it('a memberships file without a groups file fails the read', async () => {
    const files = { 'users.csv': usersCsv(3), 'memberships.csv': membershipsCsv(2) };
    await expect(source(dirWith({ ...files, 'manifest.json': manifestFor(files) })).read()).rejects.toThrow(
      /memberships name group g1, which is not in the groups file/,
    );
  });
});

describe('a whole export', () => {
  it('with a matching manifest is complete, every file read', async () => {
    const files = { 'users.csv': usersCsv(30), 'groups.csv': GROUPS, 'memberships.csv': membershipsCsv(30) };
    const read = await source(dirWith({ ...files, 'manifest.json': manifestFor(files) }), { manifest: 'required' }).read();
    expect(read.complete).toBe(true);
    expect(read.incompleteReason).toBeUndefined();
    expect(read.groupsComplete).toBeUndefined();
    expect(read.users).toHaveLength(30);
    expect(read.groups.map((g) => [g.id, g.memberIds.length])).toEqual([
      ['g1', 15],
      ['g2', 15],
    ]);
    expect(read.issues).toEqual([]);
  });

  it('as writeFileExport writes it: renamed into place, manifest last, nothing left behind', async () => {
    const dir = dirWith({});
    writeFileExport(dir, { 'users.csv': usersCsv(30), 'groups.json': '[{"id": "g1", "name": "Support", "members": ["u1"]}]' });
    expect(readdirSync(dir).sort()).toEqual(['groups.json', 'manifest.json', 'users.csv']);
    const read = await source(dir, { manifest: 'required' }).read();
    expect(read).toMatchObject({ complete: true, issues: [] });
    expect(read.users).toHaveLength(30);
    expect(read.groups).toEqual([{ id: 'g1', name: 'Support', memberIds: ['u1'] }]);
  });

  it('a last CSV record without a line break is kept when the manifest vouches for the file', async () => {
    const files = { 'users.csv': usersCsv(3).trimEnd(), 'groups.csv': GROUPS };
    const read = await source(dirWith({ ...files, 'manifest.json': manifestFor(files) })).read();
    expect(read.complete).toBe(true);
    expect(read.users.map((u) => u.email)).toEqual(['user1@corp.example', 'user2@corp.example', 'user3@corp.example']);
  });

  it('check() reports how the export was found: stable, manifest matched or missing', async () => {
    const files = { 'users.csv': usersCsv(3), 'groups.csv': GROUPS };
    const matched = await source(dirWith({ ...files, 'manifest.json': manifestFor(files) }), { settle: 20 }).check();
    expect(matched).toEqual({
      ok: true,
      checks: [
        {
          name: 'read export',
          ok: true,
          detail: expect.stringMatching(/3 users, 2 groups in .*; files unchanged for 20ms and while read; manifest\.json matches users\.csv, groups\.csv/),
        },
      ],
    });
    const without = await source(dirWith({ 'users.csv': usersCsv(3) })).check();
    expect(without.ok).toBe(true);
    expect(without.checks[0]?.detail).toMatch(
      /no manifest\.json: the export cannot be shown to be whole, so nothing is deactivated or removed.*; no groups file: groups and their members are left alone/,
    );
    const required = await source(dirWith({ 'users.csv': usersCsv(3) }), { manifest: 'required' }).check();
    expect(required).toMatchObject({ ok: false, checks: [{ detail: expect.stringContaining('manifest: required') }] });
  });
});

describe('an export rewritten while tvsync reads it', () => {
  const timers: NodeJS.Timeout[] = [];
  afterEach(() => {
    for (const t of timers.splice(0)) clearInterval(t);
  });

  /** Rewrites users.csv in place, chunk by chunk (synchronously, so no chunk is ever half-written). */
  function rewriteInChunks(path: string, text: string, chunks: number, everyMs: number, onDone?: () => void): void {
    truncateSync(path, 0);
    const size = Math.ceil(text.length / chunks);
    let written = 0;
    const timer = setInterval(() => {
      appendFileSync(path, text.slice(written, written + size));
      written += size;
      if (written >= text.length) {
        clearInterval(timer);
        onDone?.();
      }
    }, everyMs);
    timers.push(timer);
  }

  it('waits until a file rewritten in chunks holds still, and never returns a part of it as complete', async () => {
    const files = { 'users.csv': usersCsv(30), 'groups.csv': GROUPS };
    const dir = dirWith({ ...files, 'manifest.json': manifestFor(files) });
    rewriteInChunks(join(dir, 'users.csv'), files['users.csv'], 8, 10);
    const read = await source(dir, { settle: 150 }).read();
    // The writer is done long before the tries run out: the read saw the whole file, not a part.
    expect({ complete: read.complete, users: read.users.length }).toEqual({ complete: true, users: 30 });
  });

  it('a file that keeps changing fails the read, naming the file and what to do', async () => {
    const files = { 'users.csv': usersCsv(30), 'groups.csv': GROUPS };
    const dir = dirWith(files);
    let i = 30;
    const timer = setInterval(() => appendFileSync(join(dir, 'users.csv'), userLine(++i)), 10);
    timers.push(timer);
    const read = source(dir, { settle: 60 }).read();
    await expect(read).rejects.toThrow(SourceReadError);
    await expect(read).rejects.toThrow(
      new RegExp(
        `${join(dir, 'users.csv').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} kept changing while tvsync read it .*write each file under a temporary name`,
      ),
    );
  });

  it('an export replaced file by file during the settle time is read again, once whole', async () => {
    const old = { 'users.csv': usersCsv(30), 'groups.csv': GROUPS };
    const dir = dirWith({ ...old, 'manifest.json': manifestFor(old) });
    const next = { 'users.csv': usersCsv(31), 'groups.csv': GROUPS };
    const reading = source(dir, { settle: 100 }).read();
    // The exporter's next run, done right (temporary name, rename, the manifest last), while the
    // read waits: in between, the new users.csv stands beside the old manifest.
    await new Promise((r) => setTimeout(r, 30));
    writeFileSync(join(dir, '.users.csv.tmp'), next['users.csv']);
    renameSync(join(dir, '.users.csv.tmp'), join(dir, 'users.csv'));
    await new Promise((r) => setTimeout(r, 30));
    writeFileSync(join(dir, '.manifest.json.tmp'), manifestFor(next));
    renameSync(join(dir, '.manifest.json.tmp'), join(dir, 'manifest.json'));
    const read = await reading;
    expect(read.complete).toBe(true);
    expect(read.users).toHaveLength(31);
  });
});

describe('config', () => {
  it('defaults to manifest: optional and a 2s settle time, and refuses an absurd one', () => {
    expect(fileSourceConfigSchema.parse({ type: 'file', path: '.' })).toEqual({ type: 'file', path: '.', manifest: 'optional', settle: 2000 });
    expect(fileSourceConfigSchema.parse({ type: 'file', path: '.', manifest: 'required', settle: '0s' })).toMatchObject({ manifest: 'required', settle: 0 });
    expect(fileSourceConfigSchema.safeParse({ type: 'file', path: '.', settle: '10m' }).error?.issues[0]?.message).toBe(
      'expected a duration of at most 1m, not 10m',
    );
  });
});

describe('the plan from an export cut short', () => {
  it('plans no deactivation for the users cut off, though 5 of 30 is under the threshold', async () => {
    const read = await source(dirWith({ 'users.csv': usersCsv(25), 'groups.csv': GROUPS })).read();
    const all = Array.from({ length: 30 }, (_, i) => i + 1);
    const teamviewer: TvUser[] = all.map((i) => ({
      id: `tv${i}`,
      userName: `user${i}@corp.example`,
      email: `user${i}@corp.example`,
      displayName: `User ${i}`,
      active: true,
    }));
    const plan = computePlan({
      directory: read,
      teamviewer,
      links: new Map(all.map((i) => [`u${i}`, `tv${i}`])),
      outsideCompany: new Map(),
      nowMs: Date.now(),
      policy: { protect: [], threshold: { maxCount: 50, maxPercent: 20, minCountForPercent: 5 }, outsideCompanyRetryMs: 86_400_000 },
    });
    expect(plan.operations.filter((op) => op.kind === 'deactivateUser')).toEqual([]);
    expect(plan.deactivationsBlocked).toMatchObject({ reason: 'source-read-incomplete', message: expect.stringContaining('no manifest.json') });
    expect(
      plan.skipped
        .filter((s) => s.reason === 'source-read-incomplete')
        .map((s) => s.email)
        .sort(),
    ).toEqual(['user26@corp.example', 'user27@corp.example', 'user28@corp.example', 'user29@corp.example', 'user30@corp.example']);
  });
});
