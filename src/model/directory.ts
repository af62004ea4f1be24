/**
 * What an identity provider (or a file export) says about the people and groups in scope.
 * Connectors translate their wire formats into these plain records; the core only sees these.
 */

export interface DirectoryUser {
  /** The IdP's stable object id (Entra objectId, Okta id, JumpCloud _id, file `id`). */
  id: string;
  /** The address the IdP holds, exact case: becomes TeamViewer's userName. */
  email?: string;
  displayName?: string;
  /** name.formatted, where the IdP has one. */
  formattedName?: string;
  givenName?: string;
  familyName?: string;
  active: boolean;
  preferredLanguage?: string;
}

export interface DirectoryGroup {
  id: string;
  name: string;
  /** Ids of DirectoryUsers that are (direct or flattened) members. */
  memberIds: string[];
}

/** A record a connector could not turn into a DirectoryUser or DirectoryGroup. */
export interface DirectoryIssue {
  objectId?: string;
  kind: 'user' | 'group' | 'membership';
  reason: string;
}

/**
 * One read of the IdP. `complete` is the source-read guard's input: only a read that covered the
 * whole scope may lead to deactivations.
 */
export interface DirectoryRead {
  users: DirectoryUser[];
  groups: DirectoryGroup[];
  complete: boolean;
  /** Why the read is not complete, for the report. */
  incompleteReason?: string;
  /**
   * Whether the read covered the groups in scope and their memberships; absent means the same as
   * `complete`. False: no group is deleted and no member removed this cycle.
   */
  groupsComplete?: boolean;
  groupsIncompleteReason?: string;
  issues: DirectoryIssue[];
}

/** A group in scope that a looked-up user belongs to (as a cycle's read would list it). */
export interface DirectoryGroupRef {
  id: string;
  name: string;
}

/**
 * What the IdP says of one person when asked directly (the fast lane's re-read, `tvsync sync-user`).
 * `why` is a sentence for the step report: which rule put the user in or out of scope.
 * A connector that cannot tell throws instead: an unsure answer must never deactivate anyone.
 */
export type UserLookup =
  | {
      status: 'in-scope';
      user: DirectoryUser;
      /** Every group in scope the user is a member of (direct, or flattened where the sync counts nested groups). */
      groups: DirectoryGroupRef[];
      /** False when the connector could not read the user's group memberships whole: no member is then removed. */
      groupsComplete: boolean;
      why: string;
    }
  | { status: 'out-of-scope'; user?: DirectoryUser; why: string }
  | { status: 'not-found'; why: string };
