import type { ChangeHint } from '../changes.js';
import type { OktaSourceConfig } from './config.js';
import type { OktaLogEvent } from './wire.js';

/**
 * Which Okta events matter to a sync, and the hint each gives. The System Log feed and the event
 * hook both go through `hintOf`, so a change means the same thing whichever way it arrived.
 */

/** A person's own record changed: re-read that person. */
const USER_EVENTS = [
  'user.lifecycle.create',
  'user.lifecycle.activate',
  'user.lifecycle.reactivate',
  'user.lifecycle.deactivate',
  'user.lifecycle.suspend',
  'user.lifecycle.unsuspend',
  'user.lifecycle.delete.initiated',
  'user.lifecycle.delete.completed',
  'user.account.update_profile',
];
/** A person assigned to, unassigned from or changed in an app (app scope: ours only). */
const APP_USER_EVENTS = [
  'application.user_membership.add',
  'application.user_membership.remove',
  'application.user_membership.update',
  'application.user_membership.change_username',
];
const GROUP_MEMBER_EVENTS = ['group.user_membership.add', 'group.user_membership.remove'];
/** A group renamed or deleted: every member's groups change, so a full cycle. */
const GROUP_EVENTS = ['group.profile.update', 'group.lifecycle.delete'];
/** A group assigned to or unassigned from an app: its members enter or leave the scope together. */
const APP_GROUP_EVENTS = [
  'group.application_assignment.add',
  'group.application_assignment.remove',
  'group.application_assignment.update',
  'application.group_membership.add',
  'application.group_membership.remove',
  'application.group_membership.update',
];

/** Outcomes of events that changed nothing. */
const NO_CHANGE = new Set(['FAILURE', 'DENY']);

export interface EventScope {
  scope: OktaSourceConfig['scope'];
  /** App scope: the groups assigned to the app at the last full read; undefined until one ran. */
  appGroupIds(): ReadonlySet<string> | undefined;
}

/** The event types a scope listens to (the System Log filter; the event hook's subscription in Okta). */
export function eventTypesFor(scope: OktaSourceConfig['scope']): string[] {
  return scope.mode === 'app'
    ? [...USER_EVENTS, ...APP_USER_EVENTS, ...GROUP_MEMBER_EVENTS, ...GROUP_EVENTS, ...APP_GROUP_EVENTS]
    : [...USER_EVENTS, ...GROUP_MEMBER_EVENTS, ...GROUP_EVENTS];
}

/** The System Log `filter` expression selecting those event types. */
export function systemLogFilter(scope: OktaSourceConfig['scope']): string {
  return eventTypesFor(scope)
    .map((type) => `eventType eq "${type}"`)
    .join(' or ');
}

function targetOf(event: OktaLogEvent, ...types: string[]) {
  for (const type of types) {
    const target = event.target?.find((t) => t.type === type);
    if (target) return target;
  }
  return undefined;
}

/** The hint an event gives, or undefined when it cannot concern this sync. */
export function hintOf(event: OktaLogEvent, rule: EventScope): ChangeHint | undefined {
  if (NO_CHANGE.has(event.outcome?.result ?? '')) return undefined;
  const base = { atMs: Date.parse(event.published), what: event.eventType, eventId: event.uuid };
  const type = event.eventType;
  const { scope } = rule;
  const user = targetOf(event, 'User', 'AppUser');
  const group = targetOf(event, 'UserGroup');
  const app = targetOf(event, 'AppInstance');
  const ourApp = scope.mode === 'app' && (app === undefined || app.id === scope.appId);
  const groupName = group ? `"${group.displayName ?? group.alternateId ?? group.id}"` : 'a group';

  // A user out of scope still gives a hint: whether they are (still) in scope is the re-read's call.
  if (USER_EVENTS.includes(type)) return user ? { ...base, userId: user.id } : undefined;
  if (APP_USER_EVENTS.includes(type)) return ourApp && user ? { ...base, userId: user.id } : undefined;
  if (GROUP_MEMBER_EVENTS.includes(type)) {
    if (!user) return undefined;
    // App scope: membership of any group may assign the app, and which groups are assigned is the re-read's call.
    if (scope.mode === 'groups' && group && !scope.groupIds.includes(group.id)) return undefined;
    return { ...base, userId: user.id };
  }
  if (GROUP_EVENTS.includes(type)) {
    const known = scope.mode === 'groups' ? new Set(scope.groupIds) : rule.appGroupIds();
    if (group && known && !known.has(group.id)) return undefined;
    return { ...base, fullCycle: `group ${groupName} ${type === 'group.lifecycle.delete' ? 'was deleted' : 'was renamed or changed'}` };
  }
  if (APP_GROUP_EVENTS.includes(type) && ourApp) {
    return { ...base, fullCycle: `the app's group assignments changed (group ${groupName})` };
  }
  return undefined;
}
