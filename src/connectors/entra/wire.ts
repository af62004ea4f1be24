import { z } from 'zod';
import type { DirectoryUser } from '../../model/directory.js';
import { payloadReason } from '../../net/payload.js';
import type { EntraSourceConfig } from './config.js';

/** Microsoft Graph's wire formats, only the fields tvsync reads. Unknown fields are ignored. */

/** Graph's largest page for users, groups and members. */
export const PAGE_SIZE = 999;

/** The user properties a read asks for ($select): what DirectoryUser needs and no more. */
export const USER_FIELDS = ['id', 'userPrincipalName', 'mail', 'displayName', 'givenName', 'surname', 'accountEnabled', 'preferredLanguage'] as const;

export const GROUP_DELTA_FIELDS = ['displayName', 'members'] as const;

const optionalText = z
  .string()
  .nullish()
  .transform((v) => (v === null || v === undefined || v.trim() === '' ? undefined : v));

/** A collection page. Records stay unknown so that one bad record does not sink its page. */
export const pageSchema = z.object({
  value: z.array(z.unknown()),
  '@odata.nextLink': z.string().min(1).optional(),
  '@odata.deltaLink': z.string().min(1).optional(),
});
export type GraphPage = z.output<typeof pageSchema>;

export const userSchema = z.object({
  id: z.string().min(1),
  userPrincipalName: optionalText,
  mail: optionalText,
  displayName: optionalText,
  givenName: optionalText,
  surname: optionalText,
  accountEnabled: z.boolean().nullish(),
  preferredLanguage: optionalText,
});
export type GraphUser = z.output<typeof userSchema>;

/** Enough of any directory object to know what it is before validating all of it. */
export const objectRefSchema = z.object({
  id: z.string().min(1),
  '@odata.type': z.string().optional(),
  /** Delta only: the object left (reason `changed`: soft-deleted, `deleted`: gone for good). */
  '@removed': z.object({ reason: z.string().optional() }).loose().optional(),
});

export const USER_TYPE = '#microsoft.graph.user';
export const GROUP_TYPE = '#microsoft.graph.group';

/** GET /groups/{id} and /groups/delta entries (whose members@delta tvsync only needs as a change signal). */
export const groupSchema = z.object({
  id: z.string().min(1),
  displayName: optionalText,
});

/** GET /servicePrincipals/{id}/appRoleAssignedTo entries. */
export const appRoleAssignmentSchema = z.object({
  principalId: z.string().min(1),
  principalType: z.string(),
  principalDisplayName: optionalText,
});

/** GET /users/{id}/appRoleAssignments entries (the user's own, and those of groups it is a direct member of). */
export const userAssignmentSchema = appRoleAssignmentSchema.extend({ resourceId: z.string().min(1).optional() });

export type UserParse = { user: DirectoryUser } | { reason: string };

export function toDirectoryUser(raw: unknown, emailAttribute: EntraSourceConfig['emailAttribute']): UserParse {
  const parsed = userSchema.safeParse(raw);
  if (!parsed.success) return { reason: payloadReason(parsed.error) };
  const u = parsed.data;
  // accountEnabled is null for a few object kinds and absent without User.Read.All: Entra's default is enabled.
  const user: DirectoryUser = { id: u.id, active: u.accountEnabled ?? true };
  const fields = {
    email: u[emailAttribute],
    displayName: u.displayName,
    givenName: u.givenName,
    familyName: u.surname,
    preferredLanguage: u.preferredLanguage,
  };
  for (const [key, value] of Object.entries(fields) as [keyof typeof fields, string | undefined][]) {
    if (value !== undefined) user[key] = value;
  }
  return { user };
}

/** A /users/{id}/memberOf or transitiveMemberOf entry (groups, directory roles, administrative units). */
export const memberOfSchema = z.object({
  id: z.string().min(1),
  '@odata.type': z.string().optional(),
  displayName: optionalText,
});

/** A /groups/delta entry: members@delta lists the members added, and removed (`@removed`), since the last round. */
export const groupDeltaSchema = z.object({
  id: z.string().min(1),
  displayName: optionalText,
  '@removed': z.object({ reason: z.string().optional() }).loose().optional(),
  'members@delta': z
    .array(
      z.object({
        id: z.string().min(1),
        '@odata.type': z.string().optional(),
        '@removed': z.object({ reason: z.string().optional() }).loose().optional(),
      }),
    )
    .optional(),
});

/** POST /subscriptions and PATCH /subscriptions/{id} answers. */
export const subscriptionSchema = z.object({
  id: z.string().min(1),
  resource: z.string().optional(),
  expirationDateTime: z.string().refine((v) => Number.isFinite(Date.parse(v)), 'not a date'),
});

/** A change notification collection as Graph POSTs it to the notificationUrl. */
export const notificationCollectionSchema = z.object({
  value: z
    .array(
      z.object({
        subscriptionId: z.string().optional(),
        clientState: z.string().nullish(),
        changeType: z.string(),
        resource: z.string(),
        resourceData: z
          .object({ id: z.string().min(1), '@odata.type': z.string().optional() })
          .loose()
          .nullish(),
      }),
    )
    .max(1000),
});
