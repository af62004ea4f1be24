import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ChangeFeed } from '../../../src/connectors/changes.js';
import { writeFileExport } from '../../../src/connectors/file/manifest.js';
import { createFileSource } from '../../../src/connectors/file/source.js';
import { SourceReadError } from '../../../src/connectors/source.js';
import { MemoryStateStore } from '../../../src/store/memory-state.js';

/** The file source's fast lane: a new complete export asks for one cycle; one person is read only from a whole export. */

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
function emptyDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tvsync-export-feed-'));
  dirs.push(dir);
  return dir;
}

const users = (...rows: string[]) => `id,email,displayName,active\n${rows.join('\n')}\n`;
const EXPORT_1 = {
  'users.csv': users('u1,Ann@Corp.example,Ann,true', 'u2,bob@corp.example,Bob,false', 'u3,cid@corp.example,Cid,true'),
  'groups.csv': 'id,name\ng1,Support\ng2,Sales\n',
  'memberships.csv': 'groupId,userId\ng1,u1\ng2,u1\ng2,u2\n',
};
const EXPORT_2 = {
  ...EXPORT_1,
  'users.csv': users('u1,Ann@Corp.example,Ann,false', 'u3,cid@corp.example,Cid,true'),
  'memberships.csv': 'groupId,userId\ng1,u1\n',
};

async function feedOf(dir: string, state = new MemoryStateStore()): Promise<ChangeFeed> {
  const feed = await createFileSource({ path: dir, settle: 0, manifest: 'optional' }, { state }).changeFeed?.();
  if (!feed) throw new Error('no feed');
  return feed;
}

/** A poll whose batch is committed, as the runtime does once its hints are queued. */
async function pollCommitted(feed: ChangeFeed) {
  const batch = await feed.poll();
  await batch.commit();
  return batch;
}

describe('file export feed', () => {
  it('is on by default, every 5 s, and sends no request', async () => {
    const feed = await feedOf(emptyDir());
    expect(feed).toMatchObject({ name: 'file-export', everyMs: 5000 });
    const off = await createFileSource({ path: emptyDir(), changes: { export: { enabled: false, every: 5000 } } }).changeFeed?.();
    expect(off).toBeUndefined();
  });

  it('records the export on the first poll, then gives one full-cycle hint per new complete export', async () => {
    const dir = emptyDir();
    writeFileExport(dir, EXPORT_1);
    const state = new MemoryStateStore();
    const feed = await feedOf(dir, state);

    const first = await pollCommitted(feed);
    expect(first).toMatchObject({ hints: [], requests: 0 });
    expect((await pollCommitted(feed)).hints).toEqual([]);

    writeFileExport(dir, EXPORT_2);
    const batch = await feed.poll();
    expect(batch.requests).toBe(0);
    expect(batch.hints).toHaveLength(1);
    expect(batch.hints[0]).toMatchObject({ fullCycle: 'a new export was written', what: 'file export' });
    expect(batch.hints[0]?.userId).toBeUndefined();
    expect(Math.abs((batch.hints[0]?.atMs ?? 0) - Date.now())).toBeLessThan(60_000);
    // Not committed: the same export is noticed again (the runtime had not queued it).
    expect((await feed.poll()).hints).toHaveLength(1);
    await batch.commit();
    expect((await pollCommitted(feed)).hints).toEqual([]);

    // The position lives in the sync's state: a new feed over the same state remembers it.
    expect((await (await feedOf(dir, state)).poll()).hints).toEqual([]);
  });

  it('ignores a half-written export until it is complete, and a rewrite of the same contents', async () => {
    const dir = emptyDir();
    writeFileExport(dir, EXPORT_1);
    const feed = await feedOf(dir);
    await pollCommitted(feed);

    // users.csv rewritten, manifest.json not yet: the export does not match its manifest.
    writeFileSync(join(dir, 'users.csv'), EXPORT_2['users.csv']);
    expect((await pollCommitted(feed)).hints).toEqual([]);
    expect((await pollCommitted(feed)).hints).toEqual([]);

    writeFileExport(dir, EXPORT_2);
    expect((await pollCommitted(feed)).hints).toHaveLength(1);

    // Written again, byte for byte: new inodes and times, same export.
    writeFileExport(dir, EXPORT_2);
    expect((await pollCommitted(feed)).hints).toEqual([]);
  });

  it('notices an export that appears after the feed started', async () => {
    const dir = emptyDir();
    const feed = await feedOf(dir);
    expect((await pollCommitted(feed)).hints).toEqual([]);
    writeFileExport(dir, EXPORT_1);
    expect((await pollCommitted(feed)).hints).toHaveLength(1);
  });
});

describe('file readUser', () => {
  it('finds a person in a whole export by id or address, with the groups holding them', async () => {
    const dir = emptyDir();
    writeFileExport(dir, EXPORT_1);
    const source = createFileSource({ path: dir, settle: 0 });
    const byId = await source.readUser?.('u1');
    expect(byId).toEqual({
      status: 'in-scope',
      user: { id: 'u1', email: 'Ann@Corp.example', displayName: 'Ann', active: true },
      groups: [
        { id: 'g1', name: 'Support' },
        { id: 'g2', name: 'Sales' },
      ],
      groupsComplete: true,
      why: `in the export in ${dir}`,
    });
    expect(await source.readUser?.('ann@corp.EXAMPLE')).toEqual(byId);
    // The same mapping as the full read.
    const read = await source.read();
    const u2 = await source.readUser?.('u2');
    expect(u2).toMatchObject({ status: 'in-scope', groups: [{ id: 'g2', name: 'Sales' }], why: expect.stringMatching(/marked inactive/) });
    expect(u2?.status === 'in-scope' && u2.user).toEqual(read.users.find((u) => u.id === 'u2'));
  });

  it('a person missing from a whole export is out of scope', async () => {
    const dir = emptyDir();
    writeFileExport(dir, EXPORT_2);
    const source = createFileSource({ path: dir, settle: 0 });
    expect(await source.readUser?.('u2')).toEqual({ status: 'out-of-scope', why: `not in the export in ${dir}` });
    expect(await source.readUser?.('bob@corp.example')).toMatchObject({ status: 'out-of-scope' });
  });

  it('does not decide from an export that is not whole', async () => {
    const noManifest = emptyDir();
    for (const [name, text] of Object.entries(EXPORT_1)) writeFileSync(join(noManifest, name), text);
    const source = createFileSource({ path: noManifest, settle: 0 });
    await expect(source.readUser?.('u9')).rejects.toThrow(SourceReadError);
    await expect(source.readUser?.('u1')).rejects.toThrow(/cannot be shown to be whole/);

    const halfWritten = emptyDir();
    writeFileExport(halfWritten, EXPORT_1);
    writeFileSync(join(halfWritten, 'users.csv'), EXPORT_2['users.csv']);
    await expect(createFileSource({ path: halfWritten, settle: 0 }).readUser?.('u2')).rejects.toThrow(/does not match its manifest\.json/);
  });
});
