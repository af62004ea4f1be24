import { z } from 'zod';
import { durationBetween } from '../../units/duration.js';

/** The jumpcloud source's config block: zod and durations only, so loading a config loads no SDK. */

export const jumpcloudSourceConfigSchema = z.strictObject({
  type: z.literal('jumpcloud'),
  apiKey: z.string().min(1).describe('API key of a JumpCloud administrator with read access (sent as x-api-key)'),
  orgId: z.string().min(1).optional().describe('organisation id (x-org-id); only multi-tenant portal administrators need it'),
  baseUrl: z.url().default('https://console.jumpcloud.com/api').describe('API base URL; https://console.eu.jumpcloud.com/api for the EU region'),
  scope: z
    .discriminatedUnion('mode', [
      z.strictObject({
        mode: z.literal('application'),
        applicationId: z.string().min(1).describe('id of the TeamViewer SSO application in JumpCloud'),
        includeDirectUserBindings: z
          .boolean()
          .default(false)
          .describe(
            "also sync users bound to the application directly, in no bound group; JumpCloud's own identity management provisions only members of bound user groups",
          ),
      }),
      z.strictObject({
        mode: z.literal('groups'),
        groupIds: z.array(z.string().min(1)).min(1).describe('ids of the user groups to sync'),
      }),
    ])
    .describe('application: the user groups bound to the TeamViewer application and their members; groups: the listed user groups'),
  nestedGroups: z
    .boolean()
    .default(false)
    .describe("a group's members include those of the groups inside it (JumpCloud's /membership) rather than direct members only"),
  maxPages: z.number().int().min(1).default(5000).describe('pages of 100 records any one list may span before the read fails'),
  concurrency: z.number().int().min(1).max(4).default(4).describe('requests to JumpCloud in flight at once'),
  timeout: durationBetween(1000, 10 * 60_000)
    .default(30_000)
    .describe('per request, the whole answer included'),
});
export type JumpcloudSourceConfig = z.infer<typeof jumpcloudSourceConfigSchema>;
