import { readFileSync } from 'node:fs';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseConfig } from '../../src/config/load.js';

const minimal = `
syncs:
  - name: corp
    source: { type: file, path: ./export }
    target:
      token: \${TV_TOKEN}
`;

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('config', () => {
  it('applies defaults and resolves ${ENV}', () => {
    const config = parseConfig(minimal, { env: { TV_TOKEN: 'tok-123' }, baseDir: '/etc/tvsync' });
    const sync = config.syncs[0]!;
    expect(sync.target).toMatchObject({ baseUrl: 'https://webapi.teamviewer.com/scim/v2', token: 'tok-123', pageSize: 100, timeout: 30_000 });
    expect(sync.schedule.every).toBe(40 * 60_000);
    expect(sync.policy.deactivationThreshold).toEqual({ maxCount: 50, maxPercent: 20, minCountForPercent: 5 });
    expect(sync.source).toEqual({ type: 'file', path: '/etc/tvsync/export' });
    expect(config.redis).toEqual({ url: 'redis://127.0.0.1:6379', prefix: 'tvsync' });
  });

  it('names the key path of a missing value', () => {
    const text = minimal.replace('token: ${TV_TOKEN}', 'baseUrl: https://tv.example.test/scim/v2');
    expect(problems(() => parseConfig(text, { env: {} }))).toEqual(['syncs[0].target.token: required']);
  });

  it('names an unset environment variable', () => {
    expect(problems(() => parseConfig(minimal, { env: {} }))).toEqual(['syncs[0].target.token: environment variable TV_TOKEN is not set']);
  });

  it('uses ${VAR:-default} when the variable is unset', () => {
    const text = minimal.replace('${TV_TOKEN}', '${TV_TOKEN:-fallback-token}');
    expect(parseConfig(text, { env: {} }).syncs[0]?.target.token).toBe('fallback-token');
  });

  it('refuses a secret written into the file', () => {
    const text = minimal.replace('${TV_TOKEN}', 'literal-secret');
    const found = problems(() => parseConfig(text, { env: {} }));
    expect(found).toEqual(['syncs[0].target.token: secrets must not be written in the config file; use ${ENV_VAR} or tokenFile']);
    expect(found.join()).not.toContain('literal-secret');
  });

  it('reads *File keys (mounted secrets)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tvsync-config-'));
    writeFileSync(join(dir, 'tv-token'), 'from-file\n');
    const text = minimal.replace('token: ${TV_TOKEN}', 'tokenFile: ./tv-token');
    expect(parseConfig(text, { env: {}, baseDir: dir }).syncs[0]?.target.token).toBe('from-file');
    expect(problems(() => parseConfig(text, { env: {}, baseDir: '/nonexistent' }))[0]).toMatch(/^syncs\[0\]\.target\.tokenFile: cannot read \.\/tv-token \(ENOENT\)/);
  });

  it('reports every problem at once, with paths', () => {
    const text = `
syncs:
  - name: Bad Name
    source: { type: ldap }
    target: { token: "\${T}", pageSize: 0, tokn: x }
    schedule: { every: 40 minutes }
`;
    const found = problems(() => parseConfig(text, { env: { T: 'x' } }));
    expect(found).toContain('syncs[0].target: unknown key tokn');
    expect(found.some((p) => p.startsWith('syncs[0].name: use lower-case'))).toBe(true);
    expect(found.some((p) => p.startsWith('syncs[0].source.type'))).toBe(true);
    expect(found.some((p) => p.startsWith('syncs[0].target.pageSize'))).toBe(true);
    expect(found.some((p) => p.startsWith('syncs[0].schedule.every: expected a duration'))).toBe(true);
  });

  it('refuses two syncs with one name and an empty list', () => {
    const two = `${minimal}\n  - name: corp\n    source: { type: file, path: x }\n    target: { token: "\${TV_TOKEN}" }\n`;
    expect(problems(() => parseConfig(two, { env: { TV_TOKEN: 't' } }))).toEqual(['syncs[1].name: "corp" is used by another sync']);
    expect(problems(() => parseConfig('syncs: []', { env: {} }))).toEqual(['syncs: at least one sync is needed']);
  });

  it('explains YAML syntax errors and a missing file', () => {
    expect(problems(() => parseConfig('syncs: [', { env: {} }))[0]).toMatch(/not valid YAML/);
    expect(problems(() => loadConfig('/nonexistent/tvsync.yaml'))).toEqual(['cannot read /nonexistent/tvsync.yaml (ENOENT)']);
  });

  it('parses durations', () => {
    const text = minimal.replace('target:', 'schedule: { every: 6h }\n    policy: { outsideCompanyRetry: 2d }\n    target:');
    const sync = parseConfig(text, { env: { TV_TOKEN: 't' } }).syncs[0]!;
    expect(sync.schedule.every).toBe(6 * 3_600_000);
    expect(sync.policy.outsideCompanyRetry).toBe(2 * 86_400_000);
  });
});

describe('shipped examples', () => {
  it('config/example.yaml is valid and documents a working sync', () => {
    const config = loadConfig(new URL('../../config/example.yaml', import.meta.url).pathname, { TEAMVIEWER_TOKEN: 'example-token' });
    expect(config.syncs[0]).toMatchObject({ name: 'corp', source: { type: 'file' }, schedule: { every: 40 * 60_000 }, protect: ['it-admin@example.com'] });
  });
});

describe('the IdP sources documented in config/example.yaml', () => {
  const text = readFileSync(new URL('../../config/example.yaml', import.meta.url), 'utf8');
  /** The commented-out `#@ ` source blocks, each put in place of the file source. */
  const blocks = text
    .split('\n')
    .filter((line) => line.trimStart().startsWith('#@ '))
    .reduce<string[][]>((acc, line) => {
      const body = line.replace(/^(\s*)#@ /, '$1');
      if (/^\s*type: /.test(body)) acc.push([]);
      acc.at(-1)?.push(body);
      return acc;
    }, []);

  it.each(blocks.map((b) => [/type: (\w+)/.exec(b[0] ?? '')?.[1] ?? '?', b]))('the %s block is valid', (_type, lines) => {
    const withBlock = text.replace(/      type: file\n      path: \.\/demo[^\n]*\n/, `${(lines as string[]).join('\n')}\n`);
    const env = { TEAMVIEWER_TOKEN: 't', ENTRA_CLIENT_SECRET: 's', OKTA_PRIVATE_KEY: 'k', JUMPCLOUD_API_KEY: 'j' };
    const config = parseConfig(withBlock, { env, baseDir: '/etc/tvsync' });
    expect(config.syncs[0]?.source.type).toBe(_type);
  });

  it('documents all three', () => {
    expect(blocks.map((b) => /type: (\w+)/.exec(b[0] ?? '')?.[1])).toEqual(['entra', 'okta', 'jumpcloud']);
  });
});
