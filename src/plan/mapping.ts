import type { DirectoryGroup, DirectoryUser } from '../model/directory.js';

/**
 * How an IdP user becomes a TeamViewer user. Pure: the plan engine and `tvsync plan` rely on it
 * giving the same answer for the same record.
 */

export type MappingSkipReason = 'no-email' | 'invalid-email' | 'no-name' | 'value-too-long';

export interface MappedUser {
  ok: true;
  sourceId: string;
  /** Exactly as the IdP holds it (trimmed): sent as userName and e-mail. */
  email: string;
  /** Lower-cased and NFC: what matching compares, since TeamViewer treats addresses case-insensitively. */
  emailKey: string;
  displayName: string;
  active: boolean;
  preferredLanguage?: string;
}

export interface UnmappableUser {
  ok: false;
  sourceId: string;
  email?: string;
  reason: MappingSkipReason;
  message: string;
}

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/**
 * The longest value tvsync takes from an IdP record; a longer one skips the record, so that one
 * absurd value cannot grow every stored plan and report. TeamViewer documents no limits of its own.
 */
export const FIELD_CAPS = {
  /** RFC 5321: a forward path holds at most 254 characters of address. */
  email: 254,
  /** Entra ID's own limit for display names; real names are far shorter. */
  name: 256,
  /** RFC 5646 asks implementations to take language tags of at least 35 characters. */
  preferredLanguage: 35,
  /** IdP object ids are GUIDs or short keys; this only stops the absurd. */
  id: 1024,
} as const;

/** How much of an over-long or outside value a message or stored field echoes. */
export const ECHO_CAP = 60;

/**
 * `value` if it is at most `max` characters, else its start and its length: what a message or a
 * stored record may hold of a value that could be arbitrarily long.
 */
export function clip(value: string, max = ECHO_CAP): string {
  return value.length <= max ? value : `${startOf(value, max)}… (${value.length} characters)`;
}

function startOf(value: string, max: number): string {
  const start = value.slice(0, max);
  // Do not end on half of a surrogate pair.
  const last = start.charCodeAt(start.length - 1);
  return last >= 0xd800 && last <= 0xdbff ? start.slice(0, -1) : start;
}

function tooLongMessage(what: string, field: string, length: number, cap: number, value: string, consequence: string): string {
  return `${what} has a ${field} of ${length} characters ("${startOf(value, ECHO_CAP)}…"), more than the ${cap} tvsync accepts; ${consequence}`;
}

const NON_ASCII = /[\u0080-\uffff]/;

/**
 * What two addresses are compared by: trimmed, lower-cased and in Unicode NFC, so that one address
 * typed with a precomposed "é" and one with "e" + combining accent are one user, not two.
 */
export function emailKey(email: string): string {
  const key = email.trim().toLowerCase();
  return NON_ASCII.test(key) ? key.normalize('NFC') : key;
}

const RUNS_OF_SPACE = /\s{2,}|[\t\n\r\f\v]/;

function clean(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  let text = value.trim();
  // Most names need no collapsing; testing first keeps the 100k-user plan cheap.
  if (RUNS_OF_SPACE.test(text)) text = text.replace(/\s+/g, ' ');
  return text === '' ? undefined : text;
}

/** TeamViewer keeps one name: displayName, else name.formatted, else givenName + " " + familyName. */
export function deriveName(user: Pick<DirectoryUser, 'displayName' | 'formattedName' | 'givenName' | 'familyName'>): string | undefined {
  return clean(user.displayName) ?? clean(user.formattedName) ?? joinedName(user.givenName, user.familyName);
}

/** The parts that are not blank, joined by a space and cleaned; built without an array, as a million users are mapped per plan. */
function joinedName(given: string | undefined, family: string | undefined): string | undefined {
  const hasGiven = given !== undefined && given.trim() !== '';
  const hasFamily = family !== undefined && family.trim() !== '';
  if (hasGiven && hasFamily) return clean(`${given} ${family}`);
  return hasGiven ? clean(given) : hasFamily ? clean(family) : undefined;
}

// The language codes TeamViewer's Web API knows. How SCIM maps preferredLanguage onto them is not
// documented; sending a code from this list is the safest guess, anything else is left out so the
// create does not fail over a welcome-mail language.
const TEAMVIEWER_LANGUAGES = new Set([
  'bg',
  'cs',
  'da',
  'de',
  'el',
  'en',
  'es',
  'fi',
  'fr',
  'hr',
  'hu',
  'id',
  'it',
  'ja',
  'ko',
  'lt',
  'nl',
  'no',
  'pl',
  'pt',
  'ro',
  'ru',
  'sk',
  'sr',
  'sv',
  'th',
  'tr',
  'uk',
  'vi',
]);
const LANGUAGE_ALIASES: Record<string, string> = { nb: 'no', nn: 'no' };

/** `de-DE`, `de_DE`, `DE` → `de`; Chinese keeps its script/region (`zh_CN`, `zh_TW`); unknown → undefined. */
export function normaliseLanguage(value: string | undefined): string | undefined {
  const text = value?.trim().toLowerCase().replace(/-/g, '_');
  if (!text) return undefined;
  const parts = text.split('_');
  const primary = parts[0] ?? '';
  if (primary === 'zh') {
    const rest = parts.slice(1);
    if (rest.some((p) => p === 'tw' || p === 'hk' || p === 'mo' || p === 'hant')) return 'zh_TW';
    return 'zh_CN';
  }
  const code = LANGUAGE_ALIASES[primary] ?? primary;
  return TEAMVIEWER_LANGUAGES.has(code) ? code : undefined;
}

function longer(value: string | undefined, cap: number): boolean {
  return value !== undefined && value.length > cap;
}

const USER_FIELDS = [
  ['id', FIELD_CAPS.id],
  ['email', FIELD_CAPS.email],
  ['displayName', FIELD_CAPS.name],
  ['formattedName', FIELD_CAPS.name],
  ['givenName', FIELD_CAPS.name],
  ['familyName', FIELD_CAPS.name],
  ['preferredLanguage', FIELD_CAPS.preferredLanguage],
] as const;

/** The first field of `user` longer than its cap (ignoring surrounding white space), if any. */
function overLongField(user: DirectoryUser): { field: string; length: number; value: string } | undefined {
  // Nearly every record is within all caps: told by plain reads before any field is looked up by name.
  if (
    !longer(user.id, FIELD_CAPS.id) &&
    !longer(user.email, FIELD_CAPS.email) &&
    !longer(user.displayName, FIELD_CAPS.name) &&
    !longer(user.formattedName, FIELD_CAPS.name) &&
    !longer(user.givenName, FIELD_CAPS.name) &&
    !longer(user.familyName, FIELD_CAPS.name) &&
    !longer(user.preferredLanguage, FIELD_CAPS.preferredLanguage)
  )
    return undefined;
  for (const [field, cap] of USER_FIELDS) {
    const value = user[field];
    if (value === undefined || value.length <= cap) continue;
    const length = value.trim().length;
    if (length > cap) return { field, length, value };
  }
  return undefined;
}

/** `knownKey`: the address's emailKey, when the caller has already worked it out (the plan does, for a million users). */
export function mapDirectoryUser(user: DirectoryUser, knownKey?: string): MappedUser | UnmappableUser {
  const tooLong = overLongField(user);
  if (tooLong) {
    const { field, length, value } = tooLong;
    const cap = USER_FIELDS.find(([name]) => name === field)?.[1] ?? 0;
    const unmappable: UnmappableUser = {
      ok: false,
      sourceId: clip(user.id),
      reason: 'value-too-long',
      message: tooLongMessage(
        `IdP user ${clip(user.id)}`,
        field,
        length,
        cap,
        value.trim(),
        'the user is neither created nor changed until the IdP holds a shorter one',
      ),
    };
    const email = user.email?.trim();
    if (email) unmappable.email = clip(email, FIELD_CAPS.email);
    return unmappable;
  }
  const email = user.email?.trim();
  if (!email) {
    return { ok: false, sourceId: user.id, reason: 'no-email', message: `IdP user ${user.id} has no e-mail address; TeamViewer needs one as userName` };
  }
  if (!EMAIL.test(email)) {
    return {
      ok: false,
      sourceId: user.id,
      email,
      reason: 'invalid-email',
      message: `IdP user ${user.id} has "${email}" as e-mail, which is not an address TeamViewer accepts`,
    };
  }
  const displayName = deriveName(user);
  if (!displayName) {
    return {
      ok: false,
      sourceId: user.id,
      email,
      reason: 'no-name',
      message: `${email} has no displayName, formatted name, given name or family name; TeamViewer needs a name`,
    };
  }
  const mapped: MappedUser = { ok: true, sourceId: user.id, email, emailKey: knownKey ?? emailKey(email), displayName, active: user.active };
  const language = normaliseLanguage(user.preferredLanguage);
  if (language) mapped.preferredLanguage = language;
  return mapped;
}

/** Group names get the same cap as user names (Entra's limit for both). */
export const GROUP_NAME_CAP = FIELD_CAPS.name;

/** Why an IdP group cannot be synced as it is: an over-long id or name. The message echoes neither whole. */
export function groupValueProblem(group: Pick<DirectoryGroup, 'id' | 'name'>): { field: 'id' | 'name'; message: string } | undefined {
  if (group.id.length > FIELD_CAPS.id) {
    return {
      field: 'id',
      message: tooLongMessage(`IdP group ${clip(group.name)}`, 'id', group.id.length, FIELD_CAPS.id, group.id, 'the group is neither created nor changed'),
    };
  }
  const name = group.name.trim();
  if (name.length > GROUP_NAME_CAP) {
    return {
      field: 'name',
      message: tooLongMessage(
        `IdP group ${group.id}`,
        'name',
        name.length,
        GROUP_NAME_CAP,
        name,
        'the group is neither created nor changed, and its TeamViewer group is kept as it is',
      ),
    };
  }
  return undefined;
}

/** Whether an IdP id (a group's member) is too long to be a user tvsync syncs. */
export function idTooLong(id: string): boolean {
  return id.length > FIELD_CAPS.id;
}
