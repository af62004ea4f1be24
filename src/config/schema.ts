import { z } from 'zod';
import { durationBetween } from '../units/duration.js';
import type { KeyPrefix } from '../store/keys.js';
import { entraSourceConfigSchema } from '../connectors/entra/config.js';
import { fileSourceConfigSchema } from '../connectors/file/config.js';
import { jumpcloudSourceConfigSchema } from '../connectors/jumpcloud/config.js';
import { oktaSourceConfigSchema } from '../connectors/okta/config.js';
import { alertsSchema, auditSchema } from './operators.js';

const syncName = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'use lower-case letters, digits, "-" and "_" (it names Redis keys and job ids)');

export const targetSchema = z.strictObject({
  baseUrl: z.url().default('https://webapi.teamviewer.com/scim/v2').describe('TeamViewer SCIM base URL'),
  webApiBaseUrl: z.url().optional().describe('TeamViewer Web API base URL, for the token owner; default: baseUrl with /scim/v2 → /api/v1'),
  token: z.string().min(1).describe('TeamViewer script token'),
  tokenOwner: z.email().optional().describe('e-mail of the token owner, never deactivated; looked up when absent'),
  timeout: durationBetween(1000, 10 * 60_000)
    .default(30_000)
    .describe('per request'),
  pageSize: z
    .number()
    .int()
    .min(1)
    .max(10_000)
    .default(1000)
    .describe('items asked for per list page; TeamViewer may send fewer, and its page size is then followed'),
  requestsPerSecond: z
    .number()
    .positive()
    .max(100_000)
    .optional()
    .describe('the ceiling of the adaptive request rate, and where it starts unless rate.start says otherwise'),
  rate: z
    .strictObject({
      start: z.number().positive().max(100_000).optional().describe('requests per second before anything is learned; default 10 (requestsPerSecond when set)'),
      ceiling: z.number().positive().max(100_000).optional().describe('never faster; default requestsPerSecond, else 100'),
    })
    .optional(),
  concurrency: z.number().int().min(1).max(64).default(4),
  readConcurrency: z.number().int().min(1).max(64).optional().describe('list pages read at once; default: concurrency'),
});

export const policySchema = z.strictObject({
  deactivationThreshold: z
    .strictObject({
      maxCount: z.number().int().nonnegative().default(50),
      maxPercent: z.number().min(0).max(100).default(20),
      minCountForPercent: z.number().int().nonnegative().default(5),
    })
    .default({ maxCount: 50, maxPercent: 20, minCountForPercent: 5 }),
  // Memberships churn more than users (one leaver is in several groups, a re-org moves many at
  // once), so the count is ten times the users'; the share is the same, and a handful of removals
  // (someone changing team) never trips it even in a small company.
  memberRemovalThreshold: z
    .strictObject({
      maxCount: z.number().int().nonnegative().default(500),
      maxPercent: z.number().min(0).max(100).default(20),
      minCountForPercent: z.number().int().nonnegative().default(10),
    })
    .default({ maxCount: 500, maxPercent: 20, minCountForPercent: 10 }),
  outsideCompanyRetry: durationBetween(60_000, 365 * 86_400_000).default(86_400_000),
  recycledAddresses: z
    .enum(['hold', 'reactivate'])
    .default('hold')
    .describe(
      "a new IdP user whose address matches a deactivated TeamViewer user of another IdP id (or one tvsync deactivated): hold it for approval, or reactivate it (the newcomer gets the old user's groups, roles, devices and connections)",
    ),
});

export const groupsSchema = z.strictObject({
  enabled: z.boolean().default(true),
  onIdpDelete: z.enum(['delete', 'leave']).default('delete'),
  batchSize: z.number().int().min(1).max(1000).default(100),
});

export const roleMappingSchema = z.strictObject({
  idpGroup: z.string().min(1).max(1024).describe('the IdP group: its id, or its name when no group of the read has that id'),
  role: z.string().min(1).max(100).describe('the TeamViewer user role: its id, or its name; a role TeamViewer does not have is reported, never created'),
  assign: z
    .enum(['usergroup', 'accounts'])
    .default('usergroup')
    .describe("usergroup: the role goes to the TeamViewer group tvsync keeps for the IdP group (needs groups.enabled); accounts: to each member's account"),
});

export const rolesSchema = z.strictObject({
  enabled: z.boolean().default(false).describe('assign TeamViewer user roles from IdP groups; needs the user-role permission on the token'),
  mappings: z.array(roleMappingSchema).max(1000).default([]).describe('IdP group → role; only roles named here (and assignments tvsync made) are ever touched'),
});

/** Sources register here; each connector owns its schema. */
export const sourceSchema = z.discriminatedUnion('type', [
  fileSourceConfigSchema,
  entraSourceConfigSchema,
  oktaSourceConfigSchema,
  jumpcloudSourceConfigSchema,
]);

export const fastLaneSchema = z.strictObject({
  enabled: z.boolean().default(true).describe("sync one person as soon as the IdP's change feed (or a hook) names them; the cycle stays as the safety net"),
  window: durationBetween(60_000, 7 * 86_400_000)
    .default(3_600_000)
    .describe('the sliding window over which the removal thresholds count the deactivations and member removals of the fast lane'),
});

export const seatsSchema = z.strictObject({
  enabled: z
    .boolean()
    .default(false)
    .describe(
      "read the company licence (Web API /company/license) before creating users and create no more than its free seats; needs the token's licence read permission",
    ),
});

export const ssoSchema = z.strictObject({
  report: z
    .boolean()
    .default(false)
    .describe('report active users whose SSO status is not Active, per status (Web API /users); needs user read permission on the token'),
  breakGlass: z
    .array(z.email())
    .default([])
    .describe('addresses kept on the SSO exclusion list (added when missing, never removed); an address on the inclusion list is reported, never added'),
  domainId: z.string().min(1).optional().describe('the SSO domain whose exclusion list holds breakGlass; needed only when the company has more than one'),
});

export const syncSchema = z.strictObject({
  name: syncName,
  source: sourceSchema,
  target: targetSchema,
  ssoCustomerId: z.string().min(1).optional().describe('sent on create only'),
  schedule: z.strictObject({ every: durationBetween(10_000, 7 * 86_400_000).default(40 * 60_000) }).default({ every: 40 * 60_000 }),
  protect: z.array(z.email()).default([]).describe('addresses never deactivated'),
  policy: policySchema.default({
    deactivationThreshold: { maxCount: 50, maxPercent: 20, minCountForPercent: 5 },
    memberRemovalThreshold: { maxCount: 500, maxPercent: 20, minCountForPercent: 10 },
    outsideCompanyRetry: 86_400_000,
    recycledAddresses: 'hold',
  }),
  groups: groupsSchema.default({ enabled: true, onIdpDelete: 'delete', batchSize: 100 }),
  fastLane: fastLaneSchema.default({ enabled: true, window: 3_600_000 }),
  roles: rolesSchema.default({ enabled: false, mappings: [] }),
  checkWrites: z
    .boolean()
    .default(true)
    .describe(
      'remember what each write left a user or group in; the next read reports writes TeamViewer did not keep and changes made by hand (drift), which the plan then sets back',
    ),
  seats: seatsSchema.default({ enabled: false }).describe('seats before creates'),
  sso: ssoSchema.default({ report: false, breakGlass: [] }).describe('SSO health'),
});

const redisNode = z.string().regex(/^(\[[0-9A-Fa-f:.]+\]|[^\s:[\]]+):\d{1,5}$/, 'expected host:port ([address]:port for IPv6)');

/**
 * One Redis (url), a master watched by Sentinels, or a Cluster: exactly one of them. In a Cluster
 * every key of a sync carries the hash tag `{<sync>}`, so a sync lives in one slot (its scripts and
 * transactions stay on one node) while different syncs spread over the masters.
 */
const redisSchema = z
  .strictObject({
    url: z
      .string()
      .regex(/^rediss?:\/\//, 'expected redis://… or rediss://…')
      .optional()
      .describe('one Redis: redis://[:password@]host:port[/db]; default redis://127.0.0.1:6379'),
    sentinel: z
      .strictObject({
        name: z.string().min(1).describe('the master name the Sentinels watch'),
        nodes: z.array(redisNode).min(1).describe('Sentinels as host:port; any that answers names the master'),
        password: z.string().min(1).optional().describe("the Sentinels' own password, when they have one"),
      })
      .optional(),
    cluster: z.strictObject({ nodes: z.array(redisNode).min(1).describe('some masters of the Cluster as host:port; the rest are discovered') }).optional(),
    password: z.string().min(1).optional().describe("with sentinel or cluster: the data nodes' password (a url carries its own)"),
    username: z.string().min(1).optional().describe('with sentinel or cluster: the ACL user'),
    db: z.number().int().min(0).max(1023).optional().describe('with sentinel: the database (a Cluster has only 0)'),
    tls: z.boolean().optional().describe('with sentinel or cluster: TLS to the data nodes'),
    prefix: z
      .string()
      .regex(/^[A-Za-z0-9_-]+$/)
      .default('tvsync'),
  })
  .superRefine((redis, ctx) => {
    const given = (['url', 'sentinel', 'cluster'] as const).filter((k) => redis[k] !== undefined);
    if (given.length > 1)
      ctx.addIssue({ code: 'custom', path: [given[1] ?? 'url'], message: `give one of url, sentinel and cluster, not ${given.join(' and ')}` });
    for (const key of ['password', 'username', 'tls'] as const) {
      if (redis[key] !== undefined && !redis.sentinel && !redis.cluster)
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: `${key} goes with sentinel or cluster; a url carries its own (redis://user:password@host:port, rediss://)`,
        });
    }
    if (redis.db !== undefined && !redis.sentinel)
      ctx.addIssue({ code: 'custom', path: ['db'], message: 'db goes with sentinel; a url names its database (redis://host:port/2) and a Cluster has only 0' });
  })
  .transform(({ prefix, ...redis }) => ({
    ...redis,
    ...(redis.sentinel || redis.cluster ? {} : { url: redis.url ?? 'redis://127.0.0.1:6379' }),
    prefix: (redis.cluster ? { base: prefix, hashTagged: true } : prefix) as KeyPrefix,
  }));

export const configSchema = z
  .strictObject({
    redis: redisSchema.default({ url: 'redis://127.0.0.1:6379', prefix: 'tvsync' }),
    http: z
      .strictObject({
        host: z.string().default('0.0.0.0'),
        port: z.number().int().min(0).max(65535).default(9464),
        triggerToken: z.string().min(16, 'use at least 16 characters').optional(),
        metricsToken: z.string().min(16, 'use at least 16 characters').optional().describe('when set, GET /metrics needs it as a bearer token'),
        statusPage: z
          .enum(['open', 'login', 'off'])
          .optional()
          .describe('GET /status: open (default; reading needs no token, acting does), login (reading needs the token too) or off'),
      })
      .default({ host: '0.0.0.0', port: 9464 }),
    runtime: z
      .strictObject({
        operationAttempts: z.number().int().min(1).max(50).default(8).describe('attempts of an operation on transient failures'),
        operationBackoff: durationBetween(50, 5 * 60_000)
          .default(1000)
          .describe('first retry delay of an operation, doubling with jitter'),
        readBackoff: durationBetween(50, 5 * 60_000)
          .default(1000)
          .describe('first retry delay of a TeamViewer read at cycle start'),
        rateLimitFallback: durationBetween(1000, 3_600_000).default(10_000).describe('pause after a 429 that gave no Retry-After'),
        maxRetryAfter: durationBetween(1000, 86_400_000)
          .default(5 * 60_000)
          .describe('longest pause a Retry-After may impose (longer asks are capped)'),
        cycleTimeout: durationBetween(60_000, 7 * 86_400_000).default(4 * 3_600_000),
        shutdownGrace: durationBetween(1000, 10 * 60_000)
          .default(25_000)
          .describe('time running jobs get on SIGTERM'),
        lockDuration: durationBetween(1000, 10 * 60_000)
          .default(30_000)
          .describe("a dead worker's jobs are taken over after about this long"),
        stalledInterval: durationBetween(1000, 10 * 60_000).default(30_000),
        livenessMargin: durationBetween(10_000, 7 * 86_400_000)
          .optional()
          .describe(
            'how late a due cycle or a waiting job may be before /healthz fails (default: for a cycle, 2 min or a tenth of the schedule, whichever is longer; for a waiting job, 2 min)',
          ),
      })
      .default({
        operationAttempts: 8,
        operationBackoff: 1000,
        readBackoff: 1000,
        rateLimitFallback: 10_000,
        maxRetryAfter: 5 * 60_000,
        cycleTimeout: 4 * 3_600_000,
        shutdownGrace: 25_000,
        lockDuration: 30_000,
        stalledInterval: 30_000,
      }),
    log: z.strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info') }).default({ level: 'info' }),
    telemetry: z
      .strictObject({
        traces: z
          .strictObject({
            enabled: z
              .boolean()
              .optional()
              .describe(
                'traces are off unless an endpoint is named here or in OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT; false keeps them off whatever the environment says',
              ),
            endpoint: z.url().optional().describe('OTLP over HTTP, e.g. http://otel-collector:4318/v1/traces; headers come from OTEL_EXPORTER_OTLP_HEADERS'),
            serviceName: z.string().min(1).default('tvsync'),
            sampleRatio: z.number().min(0).max(1).default(1).describe('share of cycles and presses traced'),
          })
          .default({ serviceName: 'tvsync', sampleRatio: 1 }),
      })
      .default({ traces: { serviceName: 'tvsync', sampleRatio: 1 } })
      .describe('OpenTelemetry traces: a "sync now" press or a schedule tick through the cycle, each operation job and each TeamViewer request'),
    alerts: alertsSchema
      .default({ webhooks: [], backlog: { waiting: 5000, age: 15 * 60_000 }, rateLimitPerMinute: 20, checkEvery: 30_000, timeout: 10_000, attempts: 6 })
      .describe('webhook notifications (generic JSON, Slack, Teams)'),
    audit: auditSchema.default({ to: 'off' }).describe('the provisioning log as JSON lines (stdout, a file or syslog)'),
    syncs: z.array(syncSchema).min(1, 'at least one sync is needed'),
  })
  .superRefine((config, ctx) => {
    const seen = new Set<string>();
    config.syncs.forEach((sync, i) => {
      if (seen.has(sync.name)) ctx.addIssue({ code: 'custom', path: ['syncs', i, 'name'], message: `"${sync.name}" is used by another sync` });
      seen.add(sync.name);
    });
  });

export type TvsyncConfig = z.output<typeof configSchema>;
export type SyncConfig = TvsyncConfig['syncs'][number];
export type RedisConfig = TvsyncConfig['redis'];
export type SourceConfig = SyncConfig['source'];
export type TargetConfig = SyncConfig['target'];
