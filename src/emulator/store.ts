import { z } from 'zod';
import { ScimError } from './errors.js';

/** A company user as the emulator keeps it, create-only attributes included. */
export interface EmulatorUser {
  id: string;
  userName: string;
  displayName: string;
  active: boolean;
  preferredLanguage?: string;
  ssoCustomerId?: string;
  password?: string;
}

export interface EmulatorGroupRecord {
  id: string;
  displayName: string;
  memberIds: string[];
}

export interface EmulatorState {
  users: EmulatorUser[];
  groups: EmulatorGroupRecord[];
  /** Lower-cased addresses owned by TeamViewer accounts outside the company. */
  outsideEmails: string[];
  /** The numbers the next created user (`u<n>`) and group get. */
  counters: { nextUserNumber: number; nextGroupNumber: number };
}

export const emulatorStateSchema = z.object({
  users: z.array(
    z.object({
      id: z.string().min(1),
      userName: z.string().min(1),
      displayName: z.string().min(1),
      active: z.boolean(),
      preferredLanguage: z.string().optional(),
      ssoCustomerId: z.string().optional(),
      password: z.string().optional(),
    }),
  ),
  groups: z.array(z.object({ id: z.string().min(1), displayName: z.string().min(1), memberIds: z.array(z.string()) })),
  outsideEmails: z.array(z.string()).optional(),
  counters: z.object({ nextUserNumber: z.number().int().positive(), nextGroupNumber: z.number().int().positive() }).optional(),
});

export type EmulatorStateInput = z.input<typeof emulatorStateSchema>;

export interface StoredGroup {
  readonly id: string;
  displayName: string;
  /** User ids; a Set keeps add/remove O(1) and insertion order for output. */
  readonly members: Set<string>;
}

export type GroupChange =
  | { kind: 'rename'; displayName: string }
  | { kind: 'add'; memberIds: readonly string[] }
  | { kind: 'remove'; memberIds: readonly string[] }
  | { kind: 'set'; memberIds: readonly string[] };

const FIRST_USER_NUMBER = 1_000_001;
const FIRST_GROUP_NUMBER = 1;

const emailKey = (email: string): string => email.toLowerCase();
const groupNameKey = (name: string): string => name.toLowerCase();

/**
 * The company's users and groups with the indexes every request needs: by id, by lower-cased
 * e-mail and by lower-cased group name. Users are never deleted (TeamViewer's SCIM API cannot), so
 * the creation-ordered user array only grows.
 */
export class EmulatorStore {
  private readonly orderedUsers: EmulatorUser[] = [];
  private readonly usersById = new Map<string, EmulatorUser>();
  private readonly userIdByEmail = new Map<string, string>();
  /** A Map iterates in insertion order, which is the groups' creation order. */
  private readonly groupsById = new Map<string, StoredGroup>();
  private readonly groupIdByName = new Map<string, string>();
  /** Rebuilt lazily after a create or delete, so paging through groups does not copy per page. */
  private groupListCache: StoredGroup[] | undefined;
  private outside = new Set<string>();
  private nextUserNumber = FIRST_USER_NUMBER;
  private nextGroupNumber = FIRST_GROUP_NUMBER;

  /** Builds a store from a dump; throws on ids, e-mails or group names that collide, or unknown members. */
  static fromState(input: EmulatorStateInput): EmulatorStore {
    const state = emulatorStateSchema.parse(input);
    const store = new EmulatorStore();
    for (const user of state.users) {
      if (store.usersById.has(user.id)) throw new Error(`state: duplicate user id ${user.id}`);
      if (store.userIdByEmail.has(emailKey(user.userName))) throw new Error(`state: duplicate e-mail ${user.userName}`);
      store.insertUser({ ...user });
      store.nextUserNumber = Math.max(store.nextUserNumber, numberAfter(/^u(\d+)$/, user.id));
    }
    for (const group of state.groups) {
      if (store.groupsById.has(group.id)) throw new Error(`state: duplicate group id ${group.id}`);
      if (store.groupIdByName.has(groupNameKey(group.displayName))) {
        throw new Error(`state: duplicate group name ${group.displayName}`);
      }
      const unknown = group.memberIds.find((id) => !store.usersById.has(id));
      if (unknown !== undefined) throw new Error(`state: group ${group.id} has unknown member ${unknown}`);
      store.insertGroup(group.id, group.displayName, group.memberIds);
      store.nextGroupNumber = Math.max(store.nextGroupNumber, numberAfter(/^(\d+)$/, group.id));
    }
    store.setOutsideEmails(state.outsideEmails ?? []);
    if (state.counters) {
      store.nextUserNumber = Math.max(store.nextUserNumber, state.counters.nextUserNumber);
      store.nextGroupNumber = Math.max(store.nextGroupNumber, state.counters.nextGroupNumber);
    }
    return store;
  }

  dump(): EmulatorState {
    return {
      users: this.orderedUsers.map((user) => ({ ...user })),
      groups: this.groupList.map((group) => ({
        id: group.id,
        displayName: group.displayName,
        memberIds: [...group.members],
      })),
      outsideEmails: this.outsideEmailList,
      counters: { nextUserNumber: this.nextUserNumber, nextGroupNumber: this.nextGroupNumber },
    };
  }

  /** All users in creation order. */
  get userList(): readonly Readonly<EmulatorUser>[] {
    return this.orderedUsers;
  }

  user(id: string): Readonly<EmulatorUser> | undefined {
    return this.usersById.get(id);
  }

  /** Case-insensitive, as TeamViewer's e-mail uniqueness is. */
  userByEmail(email: string): Readonly<EmulatorUser> | undefined {
    const id = this.userIdByEmail.get(emailKey(email));
    return id === undefined ? undefined : this.usersById.get(id);
  }

  get outsideEmailList(): string[] {
    return [...this.outside];
  }

  isOutsideEmail(email: string): boolean {
    return this.outside.has(emailKey(email));
  }

  setOutsideEmails(emails: readonly string[]): void {
    this.outside = new Set(emails.map(emailKey));
  }

  /** Creates a company user; the address must be free inside the company and outside it. */
  createUser(input: Omit<EmulatorUser, 'id'>): Readonly<EmulatorUser> {
    if (this.userIdByEmail.has(emailKey(input.userName))) throw new ScimError(409, 'User already exists', 'uniqueness');
    if (this.isOutsideEmail(input.userName)) {
      throw new ScimError(409, `The e-mail address ${input.userName} is used by a TeamViewer account outside the company`, 'uniqueness');
    }
    return this.insertUser({ id: `u${this.nextUserNumber++}`, ...input });
  }

  /** The user with this address, created when missing; for the token owner, who is in the company by definition. */
  ensureUser(email: string, displayName: string): Readonly<EmulatorUser> {
    return this.userByEmail(email) ?? this.insertUser({ id: `u${this.nextUserNumber++}`, userName: email, displayName, active: true });
  }

  updateUser(id: string, changes: { displayName?: string; active?: boolean }): Readonly<EmulatorUser> {
    const user = this.usersById.get(id);
    if (!user) throw new ScimError(404, `User ${id} not found`);
    if (changes.displayName !== undefined) user.displayName = changes.displayName;
    if (changes.active !== undefined) user.active = changes.active;
    return user;
  }

  /** All groups in creation order. */
  get groupList(): readonly StoredGroup[] {
    this.groupListCache ??= [...this.groupsById.values()];
    return this.groupListCache;
  }

  group(id: string): StoredGroup | undefined {
    return this.groupsById.get(id);
  }

  /** Case-insensitive, as group-name uniqueness is. */
  groupByName(displayName: string): StoredGroup | undefined {
    const id = this.groupIdByName.get(groupNameKey(displayName));
    return id === undefined ? undefined : this.groupsById.get(id);
  }

  createGroup(displayName: string, memberIds: readonly string[]): StoredGroup {
    this.assertGroupNameFree(displayName, undefined);
    this.assertUsersExist(memberIds);
    return this.insertGroup(String(this.nextGroupNumber++), displayName, memberIds);
  }

  /** Applies all changes or none: everything is checked before anything is changed. */
  changeGroup(id: string, changes: readonly GroupChange[]): StoredGroup {
    const group = this.groupsById.get(id);
    if (!group) throw new ScimError(404, `Group ${id} not found`);
    let finalName: string | undefined;
    for (const change of changes) {
      if (change.kind === 'rename') finalName = change.displayName;
      else if (change.kind !== 'remove') this.assertUsersExist(change.memberIds);
    }
    if (finalName !== undefined) this.assertGroupNameFree(finalName, id);

    for (const change of changes) {
      switch (change.kind) {
        case 'rename':
          this.groupIdByName.delete(groupNameKey(group.displayName));
          group.displayName = change.displayName;
          this.groupIdByName.set(groupNameKey(group.displayName), id);
          break;
        case 'add':
          for (const memberId of change.memberIds) group.members.add(memberId);
          break;
        case 'remove':
          for (const memberId of change.memberIds) group.members.delete(memberId);
          break;
        case 'set':
          group.members.clear();
          for (const memberId of change.memberIds) group.members.add(memberId);
          break;
      }
    }
    return group;
  }

  deleteGroup(id: string): boolean {
    const group = this.groupsById.get(id);
    if (!group) return false;
    this.groupsById.delete(id);
    this.groupIdByName.delete(groupNameKey(group.displayName));
    this.groupListCache = undefined;
    return true;
  }

  private insertUser(user: EmulatorUser): EmulatorUser {
    this.orderedUsers.push(user);
    this.usersById.set(user.id, user);
    this.userIdByEmail.set(emailKey(user.userName), user.id);
    return user;
  }

  private insertGroup(id: string, displayName: string, memberIds: readonly string[]): StoredGroup {
    const group: StoredGroup = { id, displayName, members: new Set(memberIds) };
    this.groupsById.set(id, group);
    this.groupIdByName.set(groupNameKey(displayName), id);
    this.groupListCache = undefined;
    return group;
  }

  private assertGroupNameFree(displayName: string, ownId: string | undefined): void {
    const holder = this.groupIdByName.get(groupNameKey(displayName));
    if (holder !== undefined && holder !== ownId) {
      throw new ScimError(409, `A group named "${displayName}" already exists`, 'uniqueness');
    }
  }

  private assertUsersExist(ids: readonly string[]): void {
    for (const id of ids) {
      if (!this.usersById.has(id)) {
        throw new ScimError(400, `Member ${id} is not a user of the company`, 'invalidValue');
      }
    }
  }
}

/** One more than the number inside an id of the given shape, or 0 when the id has another shape. */
function numberAfter(shape: RegExp, id: string): number {
  const digits = shape.exec(id)?.[1];
  return digits === undefined ? 0 : Number(digits) + 1;
}
