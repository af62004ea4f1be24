import { z } from 'zod';
import { durationBetween } from '../../units/duration.js';

/** The file source's config block: zod and durations only. */

export const fileSourceConfigSchema = z.strictObject({
  type: z.literal('file'),
  path: z.string().min(1).describe('directory holding users.json or users.csv (relative to the config file)'),
  manifest: z
    .enum(['required', 'optional'])
    .default('optional')
    .describe('required: an export without manifest.json is not read; optional: it is read, but nothing is deactivated or removed on its account'),
  settle: durationBetween(0, 60_000).default(2000).describe('the files must keep their size and modification time this long before they are read'),
  changes: z
    .strictObject({
      export: z
        .strictObject({
          enabled: z.boolean().default(true).describe('watch for a new complete export and run a cycle for it (the fast lane); reads only the files'),
          every: durationBetween(1000, 10 * 60_000)
            .default(5000)
            .describe('how often the export files are looked at (their size and modification time; read only when they changed)'),
        })
        .default({ enabled: true, every: 5000 }),
    })
    // Optional rather than defaulted: a config without it reads as before (the source applies the defaults).
    .optional()
    .describe('change detection between cycles (the fast lane); absent: the export is watched every 5s'),
});
export type FileSourceConfig = z.infer<typeof fileSourceConfigSchema>;
export type FileSourceOptions = Pick<FileSourceConfig, 'path'> & Partial<Pick<FileSourceConfig, 'type' | 'manifest' | 'settle' | 'changes'>>;
