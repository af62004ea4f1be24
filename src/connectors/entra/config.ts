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
