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
