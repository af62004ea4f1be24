import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SourceReadError } from '../source.js';

/**
 * The files an export consists of, and reading them only once they hold still: a writer still at
 * work shows up as a change, and the read waits for it or gives up for this cycle.
 */

export const TABLES = ['users', 'groups', 'memberships'] as const;
export type Table = (typeof TABLES)[number];
export const MANIFEST = 'manifest.json';
export const CANDIDATES = [...TABLES.flatMap((t) => [`${t}.json`, `${t}.csv`]), MANIFEST];

/** Observations of a file that keeps changing before the read gives up for this cycle. */
const STABILITY_ATTEMPTS = 5;

type Observation = Map<string, { size: number; mtimeMs: number; ino: number }>;

/** Size, modification time and inode of the export's files that are present. */
export async function observe(dir: string): Promise<Observation> {
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

/** An observation as a comparable string: which files are there, their sizes, times and inodes. */
export function observationKey(seen: Observation): string {
  return JSON.stringify(
    CANDIDATES.flatMap((name) => {
      const s = seen.get(name);
      return s ? [[name, s.size, s.mtimeMs, s.ino]] : [];
    }),
  );
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
export function tableFiles(present: { has(name: string): boolean }): Map<Table, string> {
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

/** The export's bytes once a snapshot of them held still, and how many snapshots that took. */
export async function stableFiles(dir: string, settle: number, signal?: AbortSignal): Promise<{ files: Map<string, Buffer>; attempts: number }> {
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
