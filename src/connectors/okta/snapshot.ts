import { z } from 'zod';

export const SNAPSHOT_KEY = 'okta:snapshot';

// How far back an incremental read looks before the moment the previous read started: covers the
// one-second resolution of the Date header and changes made while that read was running.
export const WATERMARK_OVERLAP_MS = 5 * 60_000;

/** What tvsync keeps between incremental reads (in the sync's state store). */
export const snapshotSchema = z.object({
  scopeKey: z.string(),
  fullReadAt: z.number(),
  watermark: z.string(),
  users: z.array(
    z.object({
      id: z.string(),
      active: z.boolean(),
      email: z.string().optional(),
      displayName: z.string().optional(),
      givenName: z.string().optional(),
      familyName: z.string().optional(),
      preferredLanguage: z.string().optional(),
    }),
  ),
});
export type Snapshot = z.infer<typeof snapshotSchema>;
