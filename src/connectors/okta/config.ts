import { z } from 'zod';
import { durationBetween } from '../../units/duration.js';

/** The okta source's config block: zod and durations only, so loading a config loads no SDK. */

const oktaObjectId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'expected an Okta object id such as 0oa1b2c3d4E5f6G7h8i9');
const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

export const oktaSourceConfigSchema = z.strictObject({
  type: z.literal('okta'),
  orgUrl: z
    .url({ protocol: /^https?$/ })
    .refine((url) => url.startsWith('https://') || LOCAL_HOSTS.has(new URL(url).hostname), 'use https:// (plain http only for a local test double)')
    .transform((url) => url.replace(/\/+$/, ''))
    .describe('Okta org URL, e.g. https://acme.okta.com'),
  auth: z
    .discriminatedUnion('method', [
      z.strictObject({
        method: z.literal('apiToken'),
        apiToken: z.string().min(1).describe('Okta API token, sent as "SSWS <token>"; it has the rights of the admin who created it'),
      }),
      z.strictObject({
        method: z.literal('privateKey'),
        clientId: z.string().min(1).describe('client id of the Okta API service app'),
        privateKey: z.string().min(1).describe("the service app's private key, PEM or JWK (JSON)"),
        keyId: z.string().min(1).optional().describe('kid of that key, needed when the app has several keys'),
        scopes: z
          .array(z.string().min(1))
          .min(1)
          .default(['okta.users.read', 'okta.groups.read', 'okta.apps.read'])
          .describe('OAuth scopes granted to the service app'),
      }),
    ])
    .describe('API token (SSWS) or an OAuth 2.0 service app signing in with a private key (recommended)'),
  scope: z
    .discriminatedUnion('mode', [
      z.strictObject({
        mode: z.literal('app'),
        appId: oktaObjectId.describe("the TeamViewer app's id: its users (direct or via groups) and its assigned groups are in scope"),
      }),
      z.strictObject({
        mode: z.literal('groups'),
        groupIds: z.array(oktaObjectId).min(1).describe('Okta groups whose members (and the groups themselves) are in scope'),
      }),
    ])
    .describe('which users and groups are synced'),
  emailAttribute: z.enum(['email', 'login']).default('email').describe('Okta profile attribute that becomes the TeamViewer e-mail'),
  pageSize: z.number().int().min(1).max(200).default(200).describe('records per Okta page'),
  maxPages: z.number().int().min(1).default(10_000).describe('pages one listing may span before the read is refused as runaway'),
  concurrency: z.number().int().min(1).max(8).default(4).describe('groups read at the same time (Okta limits concurrent calls per org)'),
  timeout: durationBetween(1000, 10 * 60_000)
    .default(60_000)
    .describe('per request (the token request too), the whole answer included'),
  rateLimitReservePercent: z
    .number()
    .min(0)
    .max(90)
    .default(10)
    .describe("share of each Okta rate-limit bucket left to the org's other integrations: below it, calls are spread out until the bucket resets"),
  incremental: z
    .strictObject({
      enabled: z.boolean().default(false).describe('read only changed user attributes between full reads (app scope only)'),
      fullReadEvery: durationBetween(0, 30 * 86_400_000)
        .default(86_400_000)
        .describe('a full read at least this often (e.g. 24h), to correct any drift'),
    })
    .default({ enabled: false, fullReadEvery: 86_400_000 }),
  httpsProxy: z.url().optional().describe('proxy for Okta calls; HTTPS_PROXY from the environment is not used'),
  changes: z
    .strictObject({
      systemLog: z
        .strictObject({
          enabled: z
            .boolean()
            .optional()
            .describe("poll Okta's System Log for changes; default on with an API token, or when the service app's scopes include okta.logs.read"),
          every: durationBetween(5000, 10 * 60_000)
            .default(15_000)
            .describe('how often the System Log is polled (each idle poll is one request)'),
          pageSize: z.number().int().min(1).max(1000).default(1000).describe('events per System Log page'),
          maxPages: z.number().int().min(1).max(100).default(10).describe('pages one poll reads at most; the rest waits for the next poll'),
        })
        .default({ every: 15_000, pageSize: 1000, maxPages: 10 }),
      eventHook: z
        .strictObject({
          enabled: z.boolean().default(false).describe('accept Okta event hooks at /hooks/{sync}/okta (needs an HTTPS endpoint Okta can reach)'),
          authHeader: z
            .string()
            .regex(/^[A-Za-z0-9-]{1,64}$/, 'expected an HTTP header name')
            .transform((name) => name.toLowerCase())
            .default('authorization')
            .describe("the header named as the event hook's authentication field in Okta"),
          hookSecret: z.string().min(16).optional().describe("the event hook's authentication secret (at least 16 characters), as entered in Okta"),
        })
        .refine((hook) => !hook.enabled || hook.hookSecret !== undefined, {
          message: 'hookSecret is required when the event hook is enabled',
          path: ['hookSecret'],
        })
        .default({ enabled: false, authHeader: 'authorization' }),
    })
    .default({ systemLog: { every: 15_000, pageSize: 1000, maxPages: 10 }, eventHook: { enabled: false, authHeader: 'authorization' } })
    .describe('the fast lane: how changes in Okta are noticed between full cycles'),
});
export type OktaSourceConfig = z.output<typeof oktaSourceConfigSchema>;
