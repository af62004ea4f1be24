/**
 * Why a plan leaves a user, group, membership or role assignment alone. One name per reason, used
 * as it is by the plan, the cycle report, the provisioning log and the `reason` label of
 * tvsync_skipped: machine-readable and stable across versions. A user whose create failed is named
 * by its failure class (model/failure.ts), which shares the name where the cause is the same
 * (owned-outside-company).
 */
export const USER_SKIP_REASONS = [
  'no-email',
  'invalid-email',
  'no-name',
  'value-too-long',
  'duplicate-email',
  'email-change-unsupported',
  'email-held-by-other-user',
  'inactive-not-in-teamviewer',
  'no-free-seat',
  'owned-outside-company',
  'protected',
  'recycled-address',
  'source-read-incomplete',
] as const;

export const GROUP_SKIP_REASONS = [
  'member-not-provisioned',
  'empty-group-not-created',
  'ambiguous-group-name',
  'group-name-taken',
  'duplicate-group-name',
  'group-deleted-in-idp-left',
  'group-left-out-of-scope',
  'teamviewer-group-shared',
  'source-read-incomplete',
  'value-too-long',
  /** The user's own deactivation was held, blocked or refused: their memberships stay with it. */
  'member-kept',
] as const;

export const ROLE_SKIP_REASONS = [
  'role-not-found',
  'role-ambiguous',
  'idp-group-not-found',
  'idp-group-ambiguous',
  'group-not-synced',
  'group-not-in-teamviewer',
  'member-not-provisioned',
  'token-owner',
  'protected',
  'source-read-incomplete',
] as const;

export type UserSkipReason = (typeof USER_SKIP_REASONS)[number];
export type GroupSkipReason = (typeof GROUP_SKIP_REASONS)[number];
export type RoleSkipReason = (typeof ROLE_SKIP_REASONS)[number];

/** Every skip reason, of users, groups and roles. */
export const SKIP_REASONS: ReadonlySet<string> = new Set<string>([...USER_SKIP_REASONS, ...GROUP_SKIP_REASONS, ...ROLE_SKIP_REASONS]);
