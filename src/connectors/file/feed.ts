import { z } from 'zod';
import type { ChangeBatch, ChangeFeed } from '../changes.js';
import { SourceReadError, type SourceStateStore } from '../source.js';
import { observationKey, observe } from './stable-read.js';

/**
 * The fast lane for a file export: a new complete export is a new directory, so it asks for one
 * full cycle. The files' sizes, times and inodes are looked at every poll (no read while they stay
 * the same); when they change, the export is read with the full read's trust rules, and only an
 * export that passes them, with other contents than the last one, gives the hint. Sends no request.
 */

const KEY = 'export-fingerprint';
const fingerprintSchema = z.object({ files: z.string(), digest: z.string().nullable() });
type Fingerprint = z.infer<typeof fingerprintSchema>;

export interface ExportFeedDeps {
  dir: string;
  every: number;
  state: SourceStateStore;
  /** Reads the export as read() does; throws SourceReadError for an export that is not whole. */
  readDigest: (signal?: AbortSignal) => Promise<string>;
}

export function createExportFeed(deps: ExportFeedDeps): ChangeFeed {
  const save = (f: Fingerprint) => deps.state.set(KEY, JSON.stringify(f));
  const nothing = (commit: () => Promise<void> = async () => {}): ChangeBatch => ({ hints: [], requests: 0, commit });

  return {
    name: 'file-export',
    everyMs: deps.every,
    async poll(opts = {}): Promise<ChangeBatch> {
      const stored = storedFingerprint(await deps.state.get(KEY));
      const seen = await observe(deps.dir);
      const files = observationKey(seen);
      if (stored && stored.files === files) return nothing();

      let digest: string | undefined;
      try {
        digest = await deps.readDigest(opts.signal);
      } catch (err) {
        if (!(err instanceof SourceReadError)) throw err;
      }
      // Still being written: looked at again next poll.
      if (observationKey(await observe(deps.dir)) !== files) return nothing();
      // Not whole (half-written, cut, not matching its manifest): no hint, and no new read until the files change again.
      if (digest === undefined) return nothing(() => save({ files, digest: stored?.digest ?? null }));
      const next = { files, digest };
      // The first poll only records what is there; a rewrite with the same contents is no new export.
      if (!stored || stored.digest === digest) return nothing(() => save(next));
      const atMs = Math.max(...[...seen.values()].map((s) => s.mtimeMs));
      return {
        hints: [{ fullCycle: 'a new export was written', atMs: Math.round(atMs), what: 'file export', eventId: digest }],
        requests: 0,
        commit: () => save(next),
      };
    },
  };
}

/** An unreadable fingerprint counts as none: the next poll records the export anew. */
function storedFingerprint(text: string | undefined): Fingerprint | undefined {
  if (text === undefined) return undefined;
  try {
    return fingerprintSchema.parse(JSON.parse(text));
  } catch {
    return undefined;
  }
}
