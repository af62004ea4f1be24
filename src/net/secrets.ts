/**
 * The one scrubber for credentials. Every configured secret and every credential tvsync obtains
 * (Graph and Okta access tokens) is registered here; every outside text (error bodies, echoed
 * headers, SDK messages) passes `scrubSecrets` where it enters tvsync, before it is cut, and what
 * tvsync stores or shows passes it again on the way out.
 *
 * A secret is looked for in the forms a server may echo it (raw, URL-encoded, JSON-escaped,
 * base64 and base64url at any byte alignment) and as any fragment of FRAGMENT characters or more,
 * so a message cut in the middle of a token does not leave its first half behind.
 */

export const REDACTED = '[REDACTED]';

/**
 * Config keys that hold secrets: the loader takes them only from ${ENV_VAR} or a `<key>File` and
 * registers their values; logs blank fields of these names.
 */
export const SECRET_KEYS: ReadonlySet<string> = new Set([
  'token',
  'apiToken',
  'apiKey',
  'clientSecret',
  'privateKey',
  'triggerToken',
  'metricsToken',
  'password',
  'clientState',
  'hookSecret',
]);

/** Shortest run of a secret's characters that is redacted on its own. */
const FRAGMENT = 8;
/** Shorter values are not secrets worth scanning for (and would redact ordinary words). */
const MIN_SECRET = 4;

interface Form {
  text: string;
  /** Fragment length for this form: the whole form when it is short. */
  gram: number;
}

function base64Forms(secret: string): string[] {
  const bytes = Buffer.from(secret, 'utf8');
  const out: string[] = [];
  // The secret may sit at any byte offset of what was encoded (`user:secret` in Basic auth): pad
  // it to each alignment and keep only the characters that depend on the secret's bytes alone.
  for (let pad = 0; pad < 3; pad++) {
    const encoded = Buffer.concat([Buffer.alloc(pad), bytes]).toString('base64');
    const head = pad === 0 ? 0 : 4;
    const usable = Math.floor((pad + bytes.length) / 3) * 4;
    const core = encoded.slice(head, usable);
    if (core.length >= MIN_SECRET) out.push(core, core.replace(/\+/g, '-').replace(/\//g, '_'));
  }
  return out;
}

/** PEM keys: the armour lines are public boilerplate; the body lines are the secret. */
function secretParts(secret: string): string[] {
  if (!secret.includes('-----BEGIN')) return [secret];
  return secret
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line.length >= MIN_SECRET && !line.startsWith('-----'));
}

/** Multiplier of the rolling hash over UTF-16 code units (any odd number spreads them well enough). */
const HASH_BASE = 0x01000193;

const FILTER_SIZE = 1 << 16;
const FILTER_MASK = FILTER_SIZE - 1;

/** The rolling hash of text[from, from + gram), in 32 bits. */
function hashOf(text: string, from: number, gram: number): number {
  let h = 0;
  for (let i = from; i < from + gram; i++) h = (Math.imul(h, HASH_BASE) + text.charCodeAt(i)) | 0;
  return h;
}

/** The fragments of one length, and their hashes: a text is checked for them without a substring per position. */
interface GramSet {
  fragments: Set<string>;
  /** One byte per 16-bit slice of a hash: most positions are ruled out by one array read. */
  filter: Uint8Array;
  /** HASH_BASE^(gram-1), which takes a character out of the rolling hash. */
  lead: number;
}

export class SecretScrubber {
  private readonly forms = new Map<string, Form>();
  /** Fragments of length `gram`, per gram length in use. */
  private readonly grams = new Map<number, GramSet>();

  /** Registers a secret; values shorter than 4 characters are ignored. */
  add(secret: string | undefined | null): void {
    if (typeof secret !== 'string') return;
    const trimmed = secret.trim();
    if (trimmed.length < MIN_SECRET) return;
    for (const part of secretParts(trimmed)) {
      const variants = new Set([part, encodeURIComponent(part), JSON.stringify(part).slice(1, -1), ...base64Forms(part)]);
      for (const text of variants) this.addForm(text);
    }
  }

  private addForm(text: string): void {
    if (this.forms.has(text)) return;
    const gram = Math.min(FRAGMENT, text.length);
    this.forms.set(text, { text, gram });
    let set = this.grams.get(gram);
    if (!set) {
      let lead = 1;
      for (let i = 1; i < gram; i++) lead = Math.imul(lead, HASH_BASE);
      set = { fragments: new Set(), filter: new Uint8Array(FILTER_SIZE), lead };
      this.grams.set(gram, set);
    }
    for (let i = 0; i + gram <= text.length; i++) {
      set.fragments.add(text.slice(i, i + gram));
      set.filter[hashOf(text, i, gram) & FILTER_MASK] = 1;
    }
  }

  get size(): number {
    return this.forms.size;
  }

  /** The text with every occurrence of a secret, or of a fragment of one, replaced by [REDACTED]. */
  scrub(text: string): string {
    if (this.grams.size === 0 || text.length === 0) return text;
    let marks: Uint8Array | undefined;
    for (const [gram, set] of this.grams) {
      if (text.length < gram) continue;
      // A rolling hash finds the candidates; only those are cut out and compared.
      let h = hashOf(text, 0, gram);
      for (let i = 0; ; i++) {
        if (set.filter[h & FILTER_MASK] === 1 && set.fragments.has(text.slice(i, i + gram))) {
          marks ??= new Uint8Array(text.length);
          marks.fill(1, i, i + gram);
        }
        if (i + gram >= text.length) break;
        h = (Math.imul(h - Math.imul(text.charCodeAt(i), set.lead), HASH_BASE) + text.charCodeAt(i + gram)) | 0;
      }
    }
    if (!marks) return text;
    let out = '';
    for (let i = 0; i < text.length; ) {
      if (marks[i]) {
        out += REDACTED;
        while (i < text.length && marks[i]) i++;
      } else {
        const start = i;
        while (i < text.length && !marks[i]) i++;
        out += text.slice(start, i);
      }
    }
    return out;
  }

  /** A copy of a JSON-like value with every string (keys included) scrubbed. */
  scrubDeep<T>(value: T): T {
    if (this.grams.size === 0) return value;
    return this.walk(value) as T;
  }

  private walk(value: unknown): unknown {
    if (typeof value === 'string') return this.scrub(value);
    if (Array.isArray(value)) return value.map((item) => this.walk(item));
    if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
      const out: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(value)) out[this.scrub(key)] = this.walk(item);
      return out;
    }
    return value;
  }

  /** For tests: forget every registered secret. */
  clear(): void {
    this.forms.clear();
    this.grams.clear();
  }
}

/** The process's scrubber: secrets are registered once, wherever they are loaded or obtained. */
export const secrets = new SecretScrubber();

export function registerSecret(secret: string | undefined | null): void {
  secrets.add(secret);
}

export function scrubSecrets(text: string): string {
  return secrets.scrub(text);
}

/** Outside text made safe to keep: secrets scrubbed first, then cut to `limit` characters. */
export function outsideText(text: string, limit = 300): string {
  const flat = secrets
    .scrub(text)
    .replace(/Bearer\s+[\w\-.~+/=]+/gi, 'Bearer [REDACTED]')
    .replace(/\s+/g, ' ')
    .trim();
  return flat.length > limit ? `${flat.slice(0, limit)}…` : flat;
}

/** Shortest path segment or query value of a webhook URL taken for a token. */
const URL_TOKEN = 12;

/**
 * The parts of a webhook URL that are its credential: long path segments and query values (Slack's
 * `/services/T…/B…/<token>`, a Teams workflow's `sig=`) and any password. The whole URL is not
 * registered: its fragments (`https://`, the host) would redact every other URL in a log.
 */
export function webhookUrlSecrets(url: string): string[] {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return [url];
  }
  // A stray `%` (which URL parsing keeps) must not fail the config: such a part is taken as written.
  const decode = (part: string) => {
    try {
      return decodeURIComponent(part);
    } catch {
      return part;
    }
  };
  const parts = [decode(parsed.username)];
  for (const segment of parsed.pathname.split('/')) parts.push(decode(segment));
  for (const value of parsed.searchParams.values()) parts.push(value);
  // Words and paths (`incomingwebhook`, `/triggers/manual/run`) are not tokens: a token has a digit or a capital, and no slash.
  const tokens = parts.filter((part) => part.length >= URL_TOKEN && /[0-9A-Z]/.test(part) && !part.includes('/'));
  // A password is a secret whatever it looks like.
  return parsed.password ? [decode(parsed.password), ...tokens] : tokens;
}
