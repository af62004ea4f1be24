import { z } from 'zod';
import { durationBetween } from '../../units/duration.js';

/** The jumpcloud source's config block: zod and durations only, so loading a config loads no SDK. */

export const jumpcloudSourceConfigSchema = z.strictObject({
  type: z.literal('jumpcloud'),
  apiKey: z.string().min(1).describe('API key of a JumpCloud administrator with read access (sent as x-api-key)'),
  orgId: z.string().min(1).optional().describe('organisation id (x-org-id); only multi-tenant portal administrators need it'),
  baseUrl: z.url().default('https://console.jumpcloud.com/api').describe('API base URL; https://console.eu.jumpcloud.com/api for the EU region'),
  insightsBaseUrl: z
    .url()
    .optional()
    .describe(
      'Directory Insights API base URL; when unset, https://api.jumpcloud.com for the US console, https://api.eu.jumpcloud.com for the EU console, else the origin of baseUrl',
    ),
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
  changes: z
    .strictObject({
      insights: z
        .strictObject({
          enabled: z
            .boolean()
            .default(true)
            .describe("poll Directory Insights for user and association changes (the fast lane); needs only the read key's access to Directory Insights"),
          every: durationBetween(5000, 10 * 60_000)
            .default(20_000)
            .describe('how often Directory Insights is polled'),
          overlap: durationBetween(0, 10 * 60_000)
            .default(30_000)
            .describe(
              'each poll asks again for this long before the last event seen: Directory Insights may index an event late; events already seen are dropped',
            ),
        })
        .default({ enabled: true, every: 20_000, overlap: 30_000 }),
    })
    .default({ insights: { enabled: true, every: 20_000, overlap: 30_000 } })
    .describe('change detection between cycles (the fast lane)'),
});
export type JumpcloudSourceConfig = z.infer<typeof jumpcloudSourceConfigSchema>;
