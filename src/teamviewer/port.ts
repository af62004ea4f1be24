import type { NewTvUser, TvGroup, TvUser, TvUserChanges } from '../model/teamviewer.js';

/*
 * What a cycle and an operation worker need of TeamViewer, and nothing more. The runtime depends on
 * these interfaces; the SCIM client implements them, and tests stub them. Every method throws a
 * classified SyncError when TeamViewer fails; reads either return the whole list or throw.
 */

export interface TokenOwner {
  id?: string;
  email: string;
  name?: string;
}

/** The reads a cycle plans from. */
export interface TeamViewerReader {
  listUsers(opts?: { signal?: AbortSignal }): Promise<TvUser[]>;
  /** One user by TeamViewer id; undefined when TeamViewer has none (404). */
  getUser(id: string): Promise<TvUser | undefined>;
  /** The account the token belongs to; undefined when the token may not read account data. */
  getTokenOwner(opts?: { signal?: AbortSignal }): Promise<TokenOwner | undefined>;
  listGroups(opts?: { signal?: AbortSignal }): Promise<TvGroup[]>;
}

/** The user writes of a planned operation, with the look-up a retried create needs. Users are never deleted. */
export interface UserWriter {
  findUserByEmail(email: string): Promise<TvUser | undefined>;
  createUser(user: NewTvUser): Promise<TvUser>;
  updateUser(id: string, changes: TvUserChanges): Promise<TvUser>;
}

/** The group writes of a planned operation, with the look-up that keeps a re-run from making two groups of one name. */
export interface GroupWriter {
  findGroupByName(name: string): Promise<TvGroup | undefined>;
  createGroup(displayName: string, memberIds: string[]): Promise<TvGroup>;
  renameGroup(id: string, displayName: string): Promise<void>;
  addGroupMembers(id: string, memberIds: string[]): Promise<void>;
  removeGroupMembers(id: string, memberIds: string[]): Promise<void>;
  /** A group that is already gone counts as deleted. */
  deleteGroup(id: string): Promise<void>;
}

export interface TeamViewerPort extends TeamViewerReader, UserWriter, GroupWriter {}
