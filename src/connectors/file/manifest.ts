import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { payloadReason } from '../../net/payload.js';
import { SourceReadError } from '../source.js';
import { parseCsv } from './csv.js';
import { CANDIDATES, MANIFEST } from './stable-read.js';

/**
 * manifest.json, which the exporter writes last: per file its record count and sha256, so that an
 * export cut short, half rewritten or mixed with another is told from a whole one.
 */

const manifestEntry = z
  .strictObject({
    records: z.number().int().nonnegative().optional(),
    sha256: z
      .string()
      .regex(/^[0-9a-fA-F]{64}$/, 'expected 64 hexadecimal digits')
      .optional(),
  })
  .refine((e) => e.records !== undefined || e.sha256 !== undefined, 'give records, sha256 or both');
const manifestSchema = z.object({ files: z.record(z.string(), manifestEntry) });
export type Manifest = z.infer<typeof manifestSchema>;

export function parseManifest(bytes: Buffer): Manifest {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new SourceReadError(`${MANIFEST} is not valid JSON (${(err as Error).message})`);
  }
  const result = manifestSchema.safeParse(parsed);
  if (!result.success) throw new SourceReadError(`${MANIFEST}: ${payloadReason(result.error, { root: 'top level' })}`);
  return result.data;
}

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

/** What differs between the files read and what the manifest lists: files and checksums. */
export function manifestFileProblems(manifest: Manifest, files: Map<string, Buffer>): string[] {
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

export function mismatch(dir: string, problems: string[]): SourceReadError {
  return new SourceReadError(
    `the export in ${dir} does not match its ${MANIFEST}: ${problems.join('; ')}. It is cut short, being rewritten, or mixed with another export; ` +
      'nothing is changed this cycle. The exporter must write every file first and manifest.json last, each under a temporary name renamed into place',
  );
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
