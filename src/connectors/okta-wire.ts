import { z } from 'zod';

/**
 * Okta Management API payloads, as far as tvsync reads them. Objects are not strict: Okta adds
 * fields over time, and only the ones named here matter.
 */

export const OKTA_USER_STATUSES = [
  'STAGED',
  'PROVISIONED',
  'ACTIVE',
  'RECOVERY',
  'LOCKED_OUT',
  'PASSWORD_EXPIRED',
  'SUSPENDED',
  'DEPROVISIONED',
] as const;
export type OktaUserStatus = (typeof OKTA_USER_STATUSES)[number];

// Okta sends unset profile attributes as null.
const profileText = z.string().nullish();

/** GET /api/v1/users, /api/v1/users/{id}, /api/v1/groups/{id}/users, `_embedded.user` of app users. */
export const oktaUserSchema = z.object({
  id: z.string().min(1),
  status: z.enum(OKTA_USER_STATUSES),
  lastUpdated: z.string().nullish(),
  profile: z.object({
    login: profileText,
    email: profileText,
    firstName: profileText,
    lastName: profileText,
    displayName: profileText,
    preferredLanguage: profileText,
  }),
});
export type OktaUser = z.infer<typeof oktaUserSchema>;

/** GET /api/v1/apps/{appId}/users: direct (scope USER) and group (scope GROUP) assignments alike. */
export const oktaAppUserSchema = z.object({
  id: z.string().min(1),
  _embedded: z.object({ user: z.unknown() }).partial().optional(),
});

/** GET /api/v1/apps/{appId}/groups (with expand=group the group itself is embedded). */
export const oktaAppGroupSchema = z.object({
  id: z.string().min(1),
  _embedded: z.object({ group: z.unknown() }).partial().optional(),
});

/** GET /api/v1/groups/{id}. */
export const oktaGroupSchema = z.object({
  id: z.string().min(1),
  profile: z.object({ name: z.string().min(1) }),
});

/** Any record of which only the id is needed (group members in app scope). */
export const oktaIdSchema = z.object({ id: z.string().min(1) });

/** POST /oauth2/v1/token, as the SDK hands it over (it does not check the status itself). */
export const oktaTokenSchema = z.object({ access_token: z.string().min(1) });
export const oktaTokenErrorSchema = z.object({
  error: z.string().optional(),
  error_description: z.string().optional(),
  errorCode: z.string().optional(),
});

/** What the SDK throws: OktaApiError / HttpError for an HTTP answer, node-fetch's FetchError for the network. */
export const httpFailureSchema = z.object({ status: z.number().int(), errorCode: z.string().optional(), errorSummary: z.string().optional() });
export const networkFailureSchema = z.object({ name: z.literal('FetchError'), type: z.string(), code: z.string().optional() });

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

/** Short reason for a record that failed its schema: first problem's path and message. */
export function describeWireProblem(error: z.ZodError): string {
  const problem = error.issues[0];
  if (!problem) return 'does not match the expected shape';
  const where = problem.path.length > 0 ? problem.path.join('.') : 'record';
  return `${where}: ${problem.message}`;
}
