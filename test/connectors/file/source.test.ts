import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createFileSource, quickUserRecord, userRecord } from '../../../src/connectors/file/source.js';
import { parseCsv } from '../../../src/connectors/file/csv.js';

function dirWith(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'tvsync-file-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

/** Tests write their exports before reading: no settle time needed. */
const source = (path: string) => createFileSource({ type: 'file', path, settle: 0 });

describe('csv', () => {
  it('handles BOM, quotes, escaped quotes, embedded line breaks, CRLF and semicolons', () => {
    const rows = parseCsv('\ufeffid;displayName;note\r\n1;"Doe; Jane";"said ""hi""\nthen left"\r\n2;Bob;\r\n');
    expect(rows).toEqual([
      { line: 2, values: { id: '1', displayName: 'Doe; Jane', note: 'said "hi"\nthen left' } },
      { line: 4, values: { id: '2', displayName: 'Bob', note: '' } },
    ]);
  });
  it('rejects a row with the wrong number of fields, naming the line', () => {
    expect(() => parseCsv('id,email\n1,a@x.test\n2\n')).toThrow(/line 3: expected 2 fields/);
  });
  it('rejects an unclosed quote', () => {
    expect(() => parseCsv('id,email\n1,"a@x.test\n')).toThrow(/not closed/);
  });
});

describe('file source', () => {
  it('reads users, groups and memberships from CSV', async () => {
    const dir = dirWith({
      'users.csv': 'id,email,givenName,familyName,active,preferredLanguage\n1,jane@x.test,Jane,Doe,true,de-DE\n2,bob@x.test,Bob,,no,\n',
      'groups.csv': 'id,name\ng1,Support\n',
      'memberships.csv': 'groupId,userId\ng1,2\ng1,1\ng1,9\n',
    });
    const read = await source(dir).read();
    // Read, but not shown whole: there is no manifest.json.
    expect(read.complete).toBe(false);
    expect(read.users).toEqual([
      { id: '1', email: 'jane@x.test', givenName: 'Jane', familyName: 'Doe', active: true, preferredLanguage: 'de-DE' },
      { id: '2', email: 'bob@x.test', givenName: 'Bob', active: false },
    ]);
    expect(read.groups).toEqual([{ id: 'g1', name: 'Support', memberIds: ['1', '2'] }]);
    expect(read.issues).toEqual([{ kind: 'membership', objectId: 'g1', reason: expect.stringContaining('user 9') }]);
  });

  it('reads JSON with members inline', async () => {
    const dir = dirWith({
      'users.json': JSON.stringify([{ id: 1, email: 'a@x.test', displayName: 'A' }]),
      'groups.json': JSON.stringify([{ id: 'g', name: 'G', members: [1] }]),
    });
    const read = await source(dir).read();
    expect(read.users).toEqual([{ id: '1', email: 'a@x.test', displayName: 'A', active: true }]);
    expect(read.groups[0]?.memberIds).toEqual(['1']);
  });

  it.each([
    [{ 'users.json': '[{"id": "1", "email": "a@x.test"' }, /users\.json is not valid JSON/],
    [{ 'users.json': '{"id": "1"}' }, /must hold a JSON array/],
    [{ 'users.csv': 'id,email\n,a@x.test\n' }, /users\.csv line 2: id/],
    [{ 'users.csv': 'id,email,active\n1,a@x.test,maybe\n' }, /users\.csv line 2: active/],
    [{ 'users.csv': 'id,email\n1,a@x.test\n1,b@x.test\n' }, /appears twice/],
    [{ 'users.csv': 'id,email\n1,a@x.test\n', 'memberships.csv': 'groupId,userId\ng9,1\n' }, /group g9/],
    [{}, /no users\.json or users\.csv/],
  ])('fails the whole read on a malformed export (%#)', async (files, message) => {
    await expect(source(dirWith(files)).read()).rejects.toThrow(message);
  });

  it('check() reports counts or the problem', async () => {
    const ok = await source(dirWith({ 'users.csv': 'id,email\n1,a@x.test\n' })).check();
    expect(ok).toMatchObject({ ok: true, checks: [{ detail: expect.stringContaining('1 users') }] });
    const bad = await source('/nonexistent').check();
    expect(bad.ok).toBe(false);
  });
});

describe('the hand check of user records', () => {
  const good = { id: ' e1 ', email: 'a@x.test', displayName: 'A', givenName: '', familyName: '  ', extra: 1 };
  /** Records as exporters write them, right and wrong: each differs from a good one in one field. */
  const variants: unknown[] = [
    good,
    { id: 7 },
    { id: 7.5, active: false },
    { ...good, active: true },
    ...['', ' TRUE ', 'false', '1', '0', 'Yes', 'no', 'active', 'Inactive', 'enabled', 'disabled', 'maybe', 'ja'].map((active) => ({ ...good, active })),
    { ...good, active: 1 },
    { ...good, active: null },
    { ...good, id: '' },
    { ...good, id: '   ' },
    { ...good, id: null },
    { ...good, id: true },
    { email: 'a@x.test' },
    { ...good, email: null },
    { ...good, email: 5 },
    { ...good, preferredLanguage: 'de' },
    { ...good, preferredLanguage: [] },
    null,
    'e1',
    [good],
  ];

  it.each(variants.map((v, i) => [i, v]))('variant %i: accepts only what the schema accepts, as the schema gives it', (_i, value) => {
    const parsed = userRecord.safeParse(value);
    const quick = quickUserRecord(value);
    if (!parsed.success) expect(quick).toBeUndefined();
    else {
      expect(quick).toBeDefined();
      expect(quick).toEqual(parsed.data);
    }
  });
});
