import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { configSchema, type TvsyncConfig } from './schema.js';
import { registerSecret, SECRET_KEYS, webhookUrlSecrets } from '../net/secrets.js';

/** Keys that may also be read from a file (`<key>File`): the secrets, URLs (a webhook's is a secret), and certificates, which are long but public. */
const FILE_KEYS = new Set([...SECRET_KEYS, 'certificate', 'url']);

/** A webhook URL carries its token (Slack, Teams): a secret, though its key is the common `url`. */
function isSecretKey(path: Path, key: string): boolean {
  return SECRET_KEYS.has(key) || (key === 'url' && path[0] === 'alerts' && path[1] === 'webhooks');
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    // A problem may span lines (a YAML code frame): they stay together under its dash.
    super(`invalid configuration:\n${problems.map((p) => `  - ${p.replace(/\n/g, '\n    ')}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type Path = (string | number)[];

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out || '(top level)';
}

const REFERENCE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;
/** The only value a secret key may hold in the file: a plain reference, no default. */
const PLAIN_REFERENCE = /^\$\{[A-Za-z_][A-Za-z0-9_]*\}$/;

function interpolate(text: string, env: NodeJS.ProcessEnv, path: Path, problems: string[]): string {
  return text.replace(REFERENCE, (_whole, name: string, fallback: string | undefined) => {
    const value = env[name];
    if (value !== undefined && value !== '') return value;
    if (fallback !== undefined) return fallback;
    problems.push(`${formatPath(path)}: environment variable ${name} is not set`);
    return '';
  });
}

/**
 * Resolves ${ENV} references and `<key>File` keys (Docker/Kubernetes secrets) in the parsed YAML,
 * and refuses secrets written literally into the file.
 */
function resolveValues(node: unknown, env: NodeJS.ProcessEnv, baseDir: string, path: Path, problems: string[]): unknown {
  if (Array.isArray(node)) return node.map((item, i) => resolveValues(item, env, baseDir, [...path, i], problems));
  if (typeof node === 'string') return interpolate(node, env, path, problems);
  if (node === null || typeof node !== 'object') return node;

  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    const here = [...path, key];
    if (key.endsWith('File') && FILE_KEYS.has(key.slice(0, -4))) {
      const target = key.slice(0, -4);
      if (target in node) {
        problems.push(`${formatPath(here)}: give either ${target} or ${key}, not both`);
        continue;
      }
      if (typeof value !== 'string') {
        problems.push(`${formatPath(here)}: expected a file path`);
        continue;
      }
      const file = interpolate(value, env, here, problems);
      try {
        out[target] = readFileSync(isAbsolute(file) ? file : resolve(baseDir, file), 'utf8').trim();
      } catch (err) {
        problems.push(`${formatPath(here)}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
      continue;
    }
    // A default (${VAR:-value}) would put the secret in the file all the same, and a number is a literal.
    if (isSecretKey(path, key) && value !== null && typeof value !== 'object' && !(typeof value === 'string' && PLAIN_REFERENCE.test(value.trim()))) {
      const hint = typeof value === 'string' && /\$\{[A-Za-z_][A-Za-z0-9_]*:-/.test(value) ? ' without a :- default' : '';
      problems.push(`${formatPath(here)}: secrets must not be written in the config file; use \${ENV_VAR}${hint} or ${key}File`);
      continue;
    }
    out[key] = resolveValues(value, env, baseDir, here, problems);
  }
  return out;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const where = formatPath(issue.path);
  if (issue.code === 'invalid_type' && /received undefined/.test(issue.message)) return `${where}: required`;
  if (issue.code === 'unrecognized_keys') return `${where}: unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')}`;
  if (issue.code === 'invalid_union' && 'discriminator' in issue && issue.discriminator) return `${where}.${issue.discriminator}: ${issue.message}`;
  return `${where}: ${issue.message}`;
}

/** Every value under a secret key goes to the process's scrubber as soon as it is loaded. */
function registerConfigSecrets(node: unknown): void {
  if (Array.isArray(node)) for (const item of node) registerConfigSecrets(item);
  else if (node && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (SECRET_KEYS.has(key) && typeof value === 'string') registerSecret(value);
      else registerConfigSecrets(value);
    }
  }
}

export function parseConfig(text: string, opts: { env?: NodeJS.ProcessEnv; baseDir?: string } = {}): TvsyncConfig {
  const env = opts.env ?? process.env;
  const baseDir = opts.baseDir ?? process.cwd();
  // Every syntax error, each whole: its line, column and the yaml library's excerpt of the file.
  const doc = parseDocument(text);
  if (doc.errors.length > 0) throw new ConfigError(doc.errors.map((err) => `the file is not valid YAML: ${err.message.trimEnd()}`));
  let raw: unknown;
  try {
    raw = doc.toJS();
  } catch (err) {
    throw new ConfigError([`the file is not valid YAML: ${(err as Error).message.trimEnd()}`]);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(['the file must hold a mapping with a `syncs` list']);

  const problems: string[] = [];
  const resolved = resolveValues(raw, env, baseDir, [], problems);
  if (problems.length > 0) throw new ConfigError(problems);

  const result = configSchema.safeParse(resolved);
  if (!result.success) throw new ConfigError(result.error.issues.map(describeIssue));

  registerConfigSecrets(resolved);
  try {
    registerSecret(decodeURIComponent(new URL(result.data.redis.url ?? '').password));
  } catch {
    // An unparseable URL has no password to protect; Redis reports the URL itself.
  }
  for (const webhook of result.data.alerts.webhooks) for (const part of webhookUrlSecrets(webhook.url)) registerSecret(part);
  for (const sync of result.data.syncs) {
    if (sync.source.type === 'file' && !isAbsolute(sync.source.path)) sync.source.path = resolve(baseDir, sync.source.path);
  }
  return result.data;
}

/** Path from --config, else TVSYNC_CONFIG. */
export function configPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const path = flag ?? env.TVSYNC_CONFIG;
  if (!path) throw new ConfigError(['no configuration file: pass --config FILE or set TVSYNC_CONFIG']);
  return path;
}

export function loadConfig(path: string, env: NodeJS.ProcessEnv = process.env): TvsyncConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError([`cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`]);
  }
  return parseConfig(text, { env, baseDir: dirname(resolve(path)) });
}
