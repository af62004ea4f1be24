import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { EntraSourceConfig } from './config.js';

/** What a read leaves in the sync's state store so the next one can start from delta links and still return the whole scope. */

export const SNAPSHOT_KEY = 'entra.snapshot';

const issueSchema = z.object({ objectId: z.string().optional(), kind: z.enum(['user', 'group', 'membership']), reason: z.string() });
const scopedGroupSchema = z.object({
  id: z.string(),
  name: z.string(),
  /** Every member id read, also of members whose record was unreadable (their later fix arrives by delta). */
  memberIds: z.array(z.string()),
  /** Nested mode: groups inside this one, whose membership changes touch it. */
  nestedGroupIds: z.array(z.string()),
});
export type ScopedGroup = z.output<typeof scopedGroupSchema>;

export const snapshotSchema = z.object({
  version: z.literal(1),
  fingerprint: z.string(),
  fullReadAt: z.number(),
  usersDeltaLink: z.string(),
  groupsDeltaLink: z.string(),
  directUserIds: z.array(z.string()),
  groups: z.array(scopedGroupSchema),
  users: z.array(
    z.object({
      id: z.string(),
      email: z.string().optional(),
      displayName: z.string().optional(),
      formattedName: z.string().optional(),
      givenName: z.string().optional(),
      familyName: z.string().optional(),
      active: z.boolean(),
      preferredLanguage: z.string().optional(),
    }),
  ),
  issues: z.array(issueSchema),
});
export type Snapshot = z.output<typeof snapshotSchema>;

/** The settings a snapshot was read under: when they change, it cannot be continued by delta. */
export function snapshotFingerprint(config: EntraSourceConfig): string {
  return createHash('sha256')
    .update(JSON.stringify([config.tenantId, new URL(config.graphBaseUrl).origin, config.scope, config.nestedGroups, config.emailAttribute]))
    .digest('hex')
    .slice(0, 16);
}
