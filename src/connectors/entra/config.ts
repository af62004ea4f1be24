import { z } from 'zod';
import { durationBetween } from '../../units/duration.js';

/** The entra source's config block: zod and durations only, so loading a config loads no SDK. */

const scopeSchema = z.discriminatedUnion('mode', [
  z.strictObject({
    mode: z.literal('assignment'),
    servicePrincipalId: z.string().min(1).describe('object id of the TeamViewer enterprise application (its service principal, not the appId)'),
  }),
  z.strictObject({
    mode: z.literal('groups'),
    groupIds: z.array(z.string().min(1)).min(1).describe('object ids of the groups whose members are in scope'),
  }),
]);

/** Loopback hosts: a local rehearsal against a fake Graph, which Microsoft's Graph could never reach anyway. */
const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i;
/** Hosts Graph cannot deliver to: private, link-local and unspecified addresses. */
const PRIVATE =
  /^(10(\.\d{1,3}){3}|192\.168(\.\d{1,3}){2}|172\.(1[6-9]|2\d|3[01])(\.\d{1,3}){2}|169\.254(\.\d{1,3}){2}|0\.0\.0\.0|\[(fc|fd|fe8)[0-9a-f:]*\]|[a-z0-9-]+)$/i;

const notificationsSchema = z
  .strictObject({
    enabled: z.boolean().default(false).describe('subscribe to Graph change notifications on users and groups (needs a reachable HTTPS endpoint)'),
    notificationUrl: z
      .url()
      .optional()
      .describe("public HTTPS URL of this tvsync's hook endpoint, …/hooks/{sync}/entra; Graph validates it when the subscription is made"),
    clientState: z
      .string()
      .min(16)
      .max(128)
      .optional()
      .describe('shared secret Graph sends back with each notification (16 to 128 characters); notifications without it are dropped'),
    lifetime: durationBetween(3_600_000, 29 * 86_400_000)
      .default(2 * 86_400_000)
      .describe('how long each subscription is made for; renewed when less than a third is left (Graph allows about 29 days for users and groups)'),
  })
  .superRefine((n, ctx) => {
    if (!n.enabled) return;
    if (n.notificationUrl === undefined) ctx.addIssue({ code: 'custom', path: ['notificationUrl'], message: 'notifications need notificationUrl' });
    if (n.clientState === undefined) ctx.addIssue({ code: 'custom', path: ['clientState'], message: 'notifications need clientState' });
    if (n.notificationUrl === undefined) return;
    const url = new URL(n.notificationUrl);
    if (LOOPBACK.test(url.hostname)) return;
    if (url.protocol !== 'https:') ctx.addIssue({ code: 'custom', path: ['notificationUrl'], message: 'Graph delivers notifications to https URLs only' });
    else if (PRIVATE.test(url.hostname)) {
      ctx.addIssue({ code: 'custom', path: ['notificationUrl'], message: `Graph cannot reach ${url.hostname}: give the public name of the hook endpoint` });
    }
  });

const changesSchema = z.strictObject({
  delta: z
    .strictObject({
      enabled: z.boolean().default(true).describe('poll Graph delta rounds on users and groups between cycles (no extra permission)'),
      every: durationBetween(1000, 3_600_000).default(20_000).describe('how often a delta round runs'),
      maxPages: z.number().int().min(1).max(1000).default(20).describe('pages per kind in one round; more changes than that ask for a full cycle instead'),
    })
    .default({ enabled: true, every: 20_000, maxPages: 20 })
    .describe('the polled change feed (entra-delta)'),
  notifications: notificationsSchema.default({ enabled: false, lifetime: 2 * 86_400_000 }).describe('Graph change notifications, pushed to the hook endpoint'),
});

export const entraSourceConfigSchema = z
  .strictObject({
    type: z.literal('entra'),
    tenantId: z.string().min(1).describe('directory (tenant) id'),
    clientId: z.string().min(1).describe('application (client) id of the app registration tvsync signs in as'),
    clientSecret: z.string().min(1).optional().describe('client secret; or give certificate and privateKey'),
    certificate: z.string().min(1).optional().describe('PEM certificate uploaded to the app registration'),
    privateKey: z.string().min(1).optional().describe('PEM private key of that certificate'),
    graphBaseUrl: z
      .url()
      .default('https://graph.microsoft.com')
      .describe('Graph endpoint (scheme and host); US Gov: https://graph.microsoft.us, China: https://microsoftgraph.chinacloudapi.cn'),
    authorityHost: z
      .url()
      .default('https://login.microsoftonline.com')
      .describe('sign-in endpoint; US Gov: https://login.microsoftonline.us, China: https://login.chinacloudapi.cn'),
    disableInstanceDiscovery: z
      .boolean()
      .default(false)
      .describe(
        "skip Microsoft's instance discovery, which knows only Microsoft's own sign-in hosts: needed for an authorityHost that is a private endpoint, a proxy, an on-premises authority or a local rehearsal",
      ),
    authorityCaCertificate: z
      .string()
      .includes('-----BEGIN CERTIFICATE-----')
      .optional()
      .describe(
        'PEM of a certificate authority trusted for the sign-in endpoint besides the public ones: an authorityHost behind a private CA, a TLS-inspecting proxy or a local rehearsal',
      ),
    scope: scopeSchema.describe('who is in scope: the users and groups assigned to the enterprise app, or members of listed groups'),
    nestedGroups: z.boolean().default(false).describe('count members of nested groups too; Entra app assignment itself grants only direct members'),
    emailAttribute: z.enum(['userPrincipalName', 'mail']).default('userPrincipalName').describe('user property that becomes the TeamViewer e-mail'),
    fullReadInterval: durationBetween(0, 30 * 86_400_000)
      .default(86_400_000)
      .describe('read everything at least this often; delta queries in between'),
    timeout: durationBetween(1000, 10 * 60_000)
      .default(30_000)
      .describe('per Graph or sign-in request, the whole answer included'),
    concurrency: z.number().int().min(1).max(16).default(4).describe('group listings in flight at once'),
    maxPages: z.number().int().min(1).default(10_000).describe('pages per listing; a listing that needs more fails the read'),
    changes: changesSchema
      .default({ delta: { enabled: true, every: 20_000, maxPages: 20 }, notifications: { enabled: false, lifetime: 2 * 86_400_000 } })
      .describe('change detection between cycles: delta rounds (on by default) and change notifications (off by default)'),
  })
  .superRefine((c, ctx) => {
    const certificate = c.certificate !== undefined && c.privateKey !== undefined;
    if (c.clientSecret === undefined && !certificate) {
      ctx.addIssue({ code: 'custom', path: ['clientSecret'], message: 'give clientSecret, or certificate and privateKey' });
    }
    if (c.clientSecret !== undefined && (c.certificate !== undefined || c.privateKey !== undefined)) {
      ctx.addIssue({ code: 'custom', path: ['clientSecret'], message: 'give either clientSecret or certificate and privateKey, not both' });
    }
  });
export type EntraSourceConfig = z.output<typeof entraSourceConfigSchema>;
