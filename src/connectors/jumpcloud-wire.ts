import { z } from 'zod';

/** JumpCloud's wire formats, only the fields tvsync reads. Unknown fields are ignored. */

/** The v1 `fields` projection: what DirectoryUser needs and no more. */
export const SYSTEM_USER_FIELDS = '_id email firstname lastname displayname suspended password_expired state';

const optionalText = z
  .string()
  .nullish()
  .transform((v) => (v === null || v === undefined || v.trim() === '' ? undefined : v));

export const systemUserSchema = z.object({
  _id: z.string().min(1),
  email: optionalText,
  firstname: optionalText,
  lastname: optionalText,
  displayname: optionalText,
  suspended: z.boolean().nullish(),
  password_expired: z.boolean().nullish(),
  /** ACTIVATED, STAGED or SUSPENDED. */
  state: z.string().nullish(),
});
export type SystemUser = z.output<typeof systemUserSchema>;

/** GET /systemusers (v1): records stay unknown so one bad record does not sink its page. */
export const systemUserListSchema = z.object({
  totalCount: z.number().int().nonnegative(),
  results: z.array(z.unknown()),
});

/** v2 lists are bare arrays; their total travels in the x-total-count header. */
export const v2ListSchema = z.array(z.unknown());

export const userGroupSchema = z.object({
  id: z.string().min(1),
  name: z.string().trim().min(1),
});

const graphObjectSchema = z.object({ id: z.string().min(1), type: z.string() });

/** An edge: `/usergroups/{id}/members` and `/applications/{id}/associations` entries. */
export const graphConnectionSchema = z.object({ to: graphObjectSchema });

/**
 * A traversal result (`/applications/{id}/users|usergroups`, `/usergroups/{id}/membership`): each
 * path is the chain of edges from the start object to this one, so a one-edge path is a direct binding.
 */
export const graphObjectWithPathsSchema = graphObjectSchema.extend({
  paths: z.array(z.array(z.unknown())),
});

/** Enough of any record to know whether it is in scope before validating all of it. */
export const idOfSystemUser = z.object({ _id: z.string().min(1) });
export const idOfUserGroup = z.object({ id: z.string().min(1) });
