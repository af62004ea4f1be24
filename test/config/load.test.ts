import { readFileSync } from 'node:fs';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseConfig } from '../../src/config/load.js';
import { MINIMAL_CONFIG as minimal, configProblems as problems } from '../support/config.js';

describe('config', () => {
  it('applies defaults and resolves ${ENV}', () => {
    const config = parseConfig(minimal, { env: { TV_TOKEN: 'tok-123' }, baseDir: '/etc/tvsync' });
    const sync = config.syncs[0]!;
    expect(sync.target).toMatchObject({ baseUrl: 'https://webapi.teamviewer.com/scim/v2', token: 'tok-123', pageSize: 1000, timeout: 30_000 });
    expect(sync.schedule.every).toBe(40 * 60_000);
    expect(sync.policy.deactivationThreshold).toEqual({ maxCount: 50, maxPercent: 20, minCountForPercent: 5 });
    expect(sync.source).toEqual({ type: 'file', path: '/etc/tvsync/export', manifest: 'optional', settle: 2000 });
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
    const text = minimal.replace('token: ${TV_TOKEN}', 'token: ${TV_TOKEN}\n      baseUrl: ${TV_URL:-https://tv.example.test/scim/v2}');
    expect(parseConfig(text, { env: { TV_TOKEN: 't' } }).syncs[0]?.target.baseUrl).toBe('https://tv.example.test/scim/v2');
  });

  it('refuses a secret given as the default of a reference, without echoing it', () => {
    for (const value of ['${TV_TOKEN:-literal-secret}', '"${TV_TOKEN:-literal-secret}"', '${TV_TOKEN:-}', 'pre${TV_TOKEN}']) {
      const found = problems(() => parseConfig(minimal.replace('${TV_TOKEN}', value), { env: { TV_TOKEN: 'from-env' } }));
      expect(found).toEqual([
        expect.stringMatching(/^syncs\[0\]\.target\.token: secrets must not be written in the config file; use \$\{ENV_VAR\}.* or tokenFile$/),
      ]);
      expect(found.join()).not.toContain('literal-secret');
    }
    const found = problems(() => parseConfig(minimal.replace('${TV_TOKEN}', '${TV_TOKEN:-literal-secret}'), { env: {} }));
    expect(found[0]).toContain('without a :- default');
  });

  it('refuses a secret written as a number', () => {
    expect(problems(() => parseConfig(minimal.replace('${TV_TOKEN}', '123456789012'), { env: {} }))).toEqual([
      'syncs[0].target.token: secrets must not be written in the config file; use ${ENV_VAR} or tokenFile',
    ]);
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
    expect(problems(() => parseConfig(text, { env: {}, baseDir: '/nonexistent' }))[0]).toMatch(
      /^syncs\[0\]\.target\.tokenFile: cannot read \.\/tv-token \(ENOENT\)/,
    );
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

  it('shows a YAML syntax error whole: line, column and the excerpt pointing at it', () => {
    const text = 'syncs:\n  - name: corp\n   source: { type: file, path: . }\n';
    let error: ConfigError | undefined;
    try {
      parseConfig(text, { env: {} });
    } catch (err) {
      error = err as ConfigError;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const [problem] = error!.problems;
    expect(problem).toMatch(/^the file is not valid YAML: .* at line 3, column \d+:\n/);
    // The excerpt: the offending line and a caret under the column.
    expect(problem).toContain('   source: { type: file, path: . }');
    expect(problem).toMatch(/\n *\^/);
    // Printed under its dash, the excerpt lines keep their alignment.
    expect(error!.message).toContain('\n       source: { type: file, path: . }');
  });

  it('reports every YAML syntax error, not only the first', () => {
    const found = problems(() => parseConfig('syncs: [\nx: {', { env: {} }));
    expect(found).toHaveLength(2);
    expect(found[1]).toMatch(/at line 2, column 5:/);
  });

  it.each([
    ['schedule: { every: 0s }', 'syncs[0].schedule.every: expected a duration from 10s to 7d, not 0ms'],
    ['schedule: { every: 30d }', 'syncs[0].schedule.every: expected a duration from 10s to 7d, not 30d'],
    ['policy: { outsideCompanyRetry: 10s }', 'syncs[0].policy.outsideCompanyRetry: expected a duration from 1m to 365d, not 10s'],
  ])('refuses a duration that cannot work, naming the key and the range (%s)', (yaml, message) => {
    const text = minimal.replace('target:', `${yaml}\n    target:`);
    expect(problems(() => parseConfig(text, { env: { TV_TOKEN: 't' } }))).toEqual([message]);
  });

  it('refuses a zero or absurd request timeout and runtime knob', () => {
    const text = `runtime: { operationBackoff: 0ms, lockDuration: 2d }\n${minimal.replace('token: ${TV_TOKEN}', 'token: ${TV_TOKEN}\n      timeout: 0s')}`;
    expect(problems(() => parseConfig(text, { env: { TV_TOKEN: 't' } })).sort()).toEqual([
      'runtime.lockDuration: expected a duration from 1s to 10m, not 2d',
      'runtime.operationBackoff: expected a duration from 50ms to 5m, not 0ms',
      'syncs[0].target.timeout: expected a duration from 1s to 10m, not 0ms',
    ]);
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
    const withBlock = text.replace(/ {6}type: file\n {6}path: \.\/demo[^\n]*\n/, `${(lines as string[]).join('\n')}\n`);
    const env = { TEAMVIEWER_TOKEN: 't', ENTRA_CLIENT_SECRET: 's', OKTA_PRIVATE_KEY: 'k', JUMPCLOUD_API_KEY: 'j' };
    const config = parseConfig(withBlock, { env, baseDir: '/etc/tvsync' });
    expect(config.syncs[0]?.source.type).toBe(_type);
  });

  it('the commented keys of the file source are valid', () => {
    const uncommented = text.replace('      # manifest: optional ', '      manifest: optional   ').replace('      # settle: 2s ', '      settle: 2s   ');
    const config = parseConfig(uncommented, { env: { TEAMVIEWER_TOKEN: 't' }, baseDir: '/etc/tvsync' });
    expect(config.syncs[0]?.source).toMatchObject({ type: 'file', manifest: 'optional', settle: 2000 });
    expect(uncommented).not.toEqual(text);
  });

  it('documents all three', () => {
    expect(blocks.map((b) => /type: (\w+)/.exec(b[0] ?? '')?.[1])).toEqual(['entra', 'okta', 'jumpcloud']);
  });
});
