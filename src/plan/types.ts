import type { NewTvUser, TvUserChanges } from '../model/teamviewer.js';
import type { WriteCheck } from './drift.js';
import type { RemovalBlock } from './guards.js';
import type { UserSkipReason } from './skip-reasons.js';
import type { RemovalThreshold } from './threshold.js';
import type { SeatState } from './seats.js';
import type { SsoHealth } from './sso.js';

/** Why an operation is planned: machine-readable, stable across versions (reports and metrics use it). */
export type OperationReason =
  | 'new-in-scope'
  | 'retry-after-outside-conflict'
  | 'attributes-changed'
  | 'disabled-in-idp'
  | 'enabled-in-idp'
  | 'removed-from-scope';

/** One of USER_SKIP_REASONS (plan/skip-reasons.ts). */
export type SkipReason = UserSkipReason;

export interface CreateUserOperation {
  kind: 'createUser';
  sourceId: string;
  email: string;
  user: NewTvUser;
  reason: OperationReason;
  message: string;
}

export interface ChangeUserOperation {
  kind: 'updateUser' | 'deactivateUser' | 'reactivateUser';
  /** For a user who left the scope: the IdP id the link still names. */
  sourceId: string;
  email: string;
  tvUserId: string;
  changes: TvUserChanges;
  before: { displayName: string; active: boolean };
  reason: OperationReason;
  message: string;
}

export type UserOperation = CreateUserOperation | ChangeUserOperation;
export type UserOperationKind = UserOperation['kind'];

export interface SkippedItem {
  sourceId?: string;
  email?: string;
  tvUserId?: string;
  reason: SkipReason;
  message: string;
}

export type LinkChange =
  | { action: 'set'; sourceId: string; tvUserId: string; reason: 'matched-by-email' }
  | { action: 'drop'; sourceId: string; tvUserId: string; reason: 'teamviewer-user-gone' | 'relinked' };

export interface PlanPolicy {
  ssoCustomerId?: string;
  /** Addresses never deactivated (any case). */
  protect: readonly string[];
  tokenOwnerEmail?: string;
  /** Deactivations held when they exceed it, against the users the sync manages. */
  threshold: RemovalThreshold;
  /** How long a create that failed because the address is owned outside the company waits before it is tried again. */
  outsideCompanyRetryMs: number;
  /** TeamViewer user ids whose deactivation a person approved: they pass the threshold. */
  approvedDeactivations?: ReadonlySet<string>;
  /** TeamViewer user ids whose deactivation the fast lane held for approval: the cycle holds them too. */
  heldByFastLane?: ReadonlySet<string>;
  /** Deactivations made within the fast lane's sliding window (by either lane): they count towards the threshold's absolute limit. */
  recentDeactivations?: number;
  /** A new IdP user matching a deactivated TeamViewer user of another IdP id: held for approval (default) or reactivated. */
  recycledAddresses?: 'hold' | 'reactivate';
  /** TeamViewer user ids whose recycled address a person approved: reactivated and linked to the new IdP user. */
  approvedRecycled?: ReadonlySet<string>;
}

export interface OutsideCompanyRecord {
  atMs: number;
  message: string;
}

export interface PlanSummary {
  inScope: number;
  teamviewerUsers: number;
  managed: number;
  unchanged: number;
  operations: Record<UserOperationKind, number>;
  held: number;
  skipped: Partial<Record<SkipReason, number>>;
}

export interface Plan {
  operations: UserOperation[];
  /** Deactivations above the threshold: not run until a person approves them. */
  held: ChangeUserOperation[];
  skipped: SkippedItem[];
  links: LinkChange[];
  /** Plan-wide facts a person should read first (guard tripped, threshold exceeded, links unknown). */
  notices: string[];
  /** Why the read guard stopped every deactivation (and with it every group removal) this cycle. */
  deactivationsBlocked?: RemovalBlock;
  threshold: { deactivations: number; managed: number; exceeded: boolean };
  summary: PlanSummary;
  /**
   * TeamViewer users on the protect list or owning the token, sorted: never deactivated, and
   * never removed from a group either.
   */
  protectedTvUserIds?: string[];
  /** The TeamViewer user owning the token, when it is in the user list: its role is never changed. */
  tokenOwnerTvUserId?: string;
  /** Earlier writes TeamViewer did not keep, and users changed by hand since (set back by this plan). */
  writeCheck?: WriteCheck;
  /** The licence's seats at planning time (seats.enabled), and how many creates wait for one. */
  seats?: SeatState;
  /** The SSO health seen at planning time (sso.report or sso.breakGlass). */
  sso?: SsoHealth;
}
