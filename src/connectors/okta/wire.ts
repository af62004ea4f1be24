import { z } from 'zod';
import type { DirectoryUser } from '../../model/directory.js';
import type { OktaSourceConfig } from './config.js';

/**
 * Okta Management API payloads, as far as tvsync reads them. Objects are not strict: Okta adds
 * fields over time, and only the ones named here matter.
 */

export const OKTA_USER_STATUSES = ['STAGED', 'PROVISIONED', 'ACTIVE', 'RECOVERY', 'LOCKED_OUT', 'PASSWORD_EXPIRED', 'SUSPENDED', 'DEPROVISIONED'] as const;
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

// STAGED and PROVISIONED users have not activated their Okta account yet, so they count as inactive
// like SUSPENDED and DEPROVISIONED; the others can sign in (or will after a password/unlock step).
const ACTIVE_STATUSES: ReadonlySet<OktaUserStatus> = new Set(['ACTIVE', 'PASSWORD_EXPIRED', 'LOCKED_OUT', 'RECOVERY']);

export function toDirectoryUser(user: OktaUser, emailAttribute: OktaSourceConfig['emailAttribute']): DirectoryUser {
  const profile = user.profile;
  const out: DirectoryUser = { id: user.id, active: ACTIVE_STATUSES.has(user.status) };
  const email = emailAttribute === 'login' ? profile.login : profile.email;
  if (email) out.email = email;
  if (profile.displayName) out.displayName = profile.displayName;
  if (profile.firstName) out.givenName = profile.firstName;
  if (profile.lastName) out.familyName = profile.lastName;
  if (profile.preferredLanguage) out.preferredLanguage = profile.preferredLanguage;
  return out;
}

/** The id of any Okta record that has one. */
export function idOf(raw: unknown): string | undefined {
  const parsed = oktaIdSchema.safeParse(raw);
  return parsed.success ? parsed.data.id : undefined;
}

/** One target of a System Log event: the user, group or app the event is about. */
export const oktaLogTargetSchema = z.object({
  id: z.string().min(1),
  type: z.string().min(1),
  alternateId: z.string().nullish(),
  displayName: z.string().nullish(),
});

/** A System Log event (GET /api/v1/logs, and each of an event hook's `data.events`); only what a hint needs. */
export const oktaLogEventSchema = z.object({
  uuid: z.string().min(1),
  published: z.iso.datetime({ offset: true }),
  eventType: z.string().min(1),
  outcome: z.object({ result: z.string().nullish() }).nullish(),
  target: z.array(oktaLogTargetSchema).nullish(),
});
export type OktaLogEvent = z.infer<typeof oktaLogEventSchema>;

/** What an Okta event hook POSTs: the events as the System Log has them. */
export const oktaEventHookSchema = z.object({
  eventType: z.string().optional(),
  data: z.object({ events: z.array(z.unknown()) }),
});

/** GET /api/v1/apps/{appId}/users/{userId}: how the user holds the app (directly, or through a group). */
export const oktaAppAssignmentSchema = z.object({
  id: z.string().min(1),
  scope: z.string().nullish(),
  _links: z.object({ group: z.object({ name: z.string().nullish() }).nullish() }).nullish(),
});
