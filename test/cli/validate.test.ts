import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { renderValidation, validateSyncs, type SyncValidation } from '../../src/cli/commands/validate.js';
import { parseConfig } from '../../src/config/load.js';
import { fakeIdpOnly, restoreNet } from '../support/cycle.js';
import { OWNER, TOKEN, people, silentLog, startEmulator, writeExport } from '../support/fixtures.js';
import { appGroup, appUser, oktaGroup, oktaUser, type OktaFake } from '../support/okta-fake.js';

type Started = Awaited<ReturnType<typeof startEmulator>>;
/** A tenant like most: the token may read its owner, /Groups exists. */
let tv: Started;
/** A tenant without group support whose token may not read account data. */
let bare: Started;

const okta: OktaFake = { org: 'https://tvsync-validate.okta.com', token: '00aValidateToken_Qw3', appId: '0oa1tvsyncvalid01' };
const WRONG_TOKEN = 'not-the-right-token-77';

beforeAll(async () => {
  fakeIdpOnly();
  tv = await startEmulator();
  bare = await startEmulator({ groups: false, owner: undefined });
});
afterEach(() => {
  nock.cleanAll();
});
afterAll(async () => {
  restoreNet();
  await Promise.all([tv.emulator.stop(), bare.emulator.stop()]);
});

interface SyncSpec {
  name?: string;
  source?: string;
  baseUrl?: string;
  token?: string;
  /** More keys of `target`, e.g. ", tokenOwner: x@y". */
  target?: string;
  /** More keys of the sync, as YAML lines. */
  more?: string;
}

/** A config whose secrets come from the environment, as in production. */
function configOf(...specs: SyncSpec[]) {
  const env: Record<string, string> = { OKTA_TOKEN: okta.token };
  const syncs = specs.map((spec, i) => {
    env[`TV_TOKEN_${i}`] = spec.token ?? TOKEN;
    return `  - name: ${spec.name ?? `sync${i}`}
    source: ${spec.source ?? `{ type: file, path: ${writeExport(people(3))}, settle: 0s }`}
    target: { baseUrl: ${spec.baseUrl ?? tv.baseUrl}, token: "\${TV_TOKEN_${i}}"${spec.target ?? ''} }${spec.more ? `\n    ${spec.more}` : ''}`;
  });
  return parseConfig(`syncs:\n${syncs.join('\n')}\n`, { env });
}

async function validateOne(spec: SyncSpec): Promise<SyncValidation> {
  const config = configOf(spec);
  const [result] = await validateSyncs(config, config.syncs, { log: silentLog });
  if (!result) throw new Error('no result');
  return result;
}

const summary = (result: SyncValidation) => ({
  ok: result.ok,
  source: result.source.checks.map((c) => [c.name, c.ok]),
  teamviewer: result.teamviewer.checks.map((c) => [c.name, c.ok]),
});
const detail = (result: SyncValidation, name: string) => [...result.source.checks, ...result.teamviewer.checks].find((c) => c.name === name)?.detail;

function expectNoWrites(): void {
  expect(tv.emulator.stats.writes).toBe(0);
  expect(bare.emulator.stats.writes).toBe(0);
}

describe('validateSyncs against TeamViewer', () => {
  it('passes a good export and a good token, reading one page of one user, the owner and /Groups', async () => {
    tv.emulator.resetStats();
    const result = await validateOne({});
    expect(summary(result)).toEqual({
      ok: true,
      source: [['read export', true]],
      teamviewer: [
        ['authenticate and list users', true],
        ['token owner', true],
        ['user groups', true],
        ['seats', true],
        ['Web API permissions', true],
      ],
    });
    expect(detail(result, 'read export')).toMatch(/^3 users, 0 groups in /);
    expect(detail(result, 'authenticate and list users')).toBe('the token was accepted; the company has 1 user');
    expect(detail(result, 'token owner')).toBe(`the token belongs to ${OWNER} (Token Owner), who is never deactivated`);
    expect(detail(result, 'user groups')).toBe('the /Groups endpoint answers: user groups can be synced');
    expect(detail(result, 'seats')).toBe('1 of 10000 seats used, 9999 free (not checked before creates: seats.enabled is off)');
    expect(detail(result, 'Web API permissions')).toBe('company licence: yes; users: yes; SSO domains: yes');
    const routes = tv.emulator.stats.byRoute;
    expect([routes['GET /Users'], routes['GET /account'], routes['GET /Groups']]).toEqual([1, 1, 1]);
    // One read of each Web API area, one page of users.
    expect([routes['GET /company'], routes['GET /users'], routes['GET /ssoDomain']]).toEqual([1, 1, 1]);
    expectNoWrites();
  });

  it('says the token was refused, and stops there', async () => {
    const result = await validateOne({ token: WRONG_TOKEN });
    expect(summary(result)).toEqual({ ok: false, source: [['read export', true]], teamviewer: [['authenticate and list users', false]] });
    expect(detail(result, 'authenticate and list users')).toMatch(/^the token was refused: .*create a new script token.*\(HTTP 401\)$/);
    expect(renderValidation([result])).not.toContain(WRONG_TOKEN);
    expectNoWrites();
  });

  it('warns, without failing, when /Groups is unavailable and the token owner cannot be read', async () => {
    const result = await validateOne({ baseUrl: bare.baseUrl });
    expect(summary(result)).toEqual({
      ok: true,
      source: [['read export', true]],
      teamviewer: [
        ['authenticate and list users', true],
        ['token owner', true],
        ['user groups', true],
        ['seats', true],
        ['Web API permissions', true],
      ],
    });
    expect(detail(result, 'token owner')).toMatch(/^warning: TeamViewer does not say who owns the token.*set target\.tokenOwner/);
    expect(detail(result, 'user groups')).toMatch(
      /^warning: \/Groups is unavailable for this company \(HTTP 404\): users are synced, group sync will be skipped/,
    );

    const named = await validateOne({ baseUrl: bare.baseUrl, target: ', tokenOwner: admin@corp.example' });
    expect(detail(named, 'token owner')).toMatch(/does not say who owns the token.*target\.tokenOwner admin@corp\.example is protected/);
    const off = await validateOne({ baseUrl: bare.baseUrl, more: 'groups: { enabled: false }' });
    expect(detail(off, 'user groups')).toBe('not checked: group sync is off (groups.enabled: false)');
    expectNoWrites();
  });

  it('fails a target.tokenOwner that is not the token owner', async () => {
    const wrong = await validateOne({ target: ', tokenOwner: someone.else@corp.example' });
    expect(wrong.ok).toBe(false);
    expect(wrong.teamviewer.checks[1]).toEqual({
      name: 'token owner',
      ok: false,
      detail: `target.tokenOwner is someone.else@corp.example, but the token belongs to ${OWNER}, who is then not protected from deactivation; correct target.tokenOwner`,
    });
    const right = await validateOne({ target: `, tokenOwner: ${OWNER.toUpperCase()}` });
    expect(right.ok).toBe(true);
    expectNoWrites();
  });

  it('names an unreachable base URL, and one that is not the SCIM endpoint', async () => {
    const result = await validateOne({ baseUrl: 'http://127.0.0.1:1/scim/v2' });
    expect(summary(result)).toEqual({ ok: false, source: [['read export', true]], teamviewer: [['authenticate and list users', false]] });
    expect(detail(result, 'authenticate and list users')).toBe(
      'no answer from http://127.0.0.1:1/scim/v2 (ECONNREFUSED): check target.baseUrl and that this machine can reach TeamViewer',
    );

    const wrongPath = await validateOne({ baseUrl: tv.baseUrl.replace(/\/scim\/v2$/, '/api') });
    expect(summary(wrongPath).teamviewer).toEqual([['authenticate and list users', false]]);
    expect(detail(wrongPath, 'authenticate and list users')).toMatch(/^GET \/Users → 404 .*is target\.baseUrl TeamViewer's SCIM endpoint \(…\/scim\/v2\)\?$/);
  });
});

describe('validateSyncs on the source side', () => {
  it('reports a malformed export while TeamViewer passes', async () => {
    const dir = writeExport([]);
    rmSync(join(dir, 'manifest.json'));
    writeFileSync(join(dir, 'users.json'), '[{"id": "1", "email": ');
    const result = await validateOne({ source: `{ type: file, path: ${dir}, settle: 0s }` });
    expect(result.ok).toBe(false);
    expect(result.source).toEqual({ ok: false, checks: [{ name: 'read export', ok: false, detail: expect.stringMatching(/^users\.json is not valid JSON/) }] });
    expect(result.teamviewer.ok).toBe(true);
    expectNoWrites();
  });

  const oktaSource = `{ type: okta, orgUrl: "${okta.org}", auth: { method: apiToken, apiToken: "\${OKTA_TOKEN}" }, scope: { mode: app, appId: ${okta.appId} } }`;

  it('runs the Okta connection test against Okta', async () => {
    const support = oktaGroup(okta, '00g1support', 'Support');
    const api = nock(okta.org)
      .matchHeader('authorization', `SSWS ${okta.token}`)
      .get(`/api/v1/apps/${okta.appId}/users`)
      .query({ limit: '1', expand: 'user' })
      .reply(200, [appUser(okta, oktaUser(okta, '00u1alice', 'Alice Archer'))])
      .get(`/api/v1/apps/${okta.appId}/groups`)
      .query({ limit: '20' })
      .reply(200, [appGroup(okta, support)]);
    const result = await validateOne({ source: oktaSource });
    expect(api.isDone()).toBe(true);
    expect(result.ok).toBe(true);
    expect(result.source).toEqual({
      ok: true,
      checks: [
        { name: 'assigned users', ok: true, detail: 'read a user assigned to the app' },
        { name: 'assigned groups', ok: true, detail: 'read 1 group(s) assigned to the app' },
      ],
    });
    expectNoWrites();
  });

  it('reports a refused Okta token without printing it', async () => {
    nock(okta.org)
      .get(`/api/v1/apps/${okta.appId}/users`)
      .query(true)
      .reply(401, { errorCode: 'E0000011', errorSummary: 'Invalid token provided', errorCauses: [] });
    const result = await validateOne({ source: oktaSource });
    expect(result.ok).toBe(false);
    expect(result.source.checks).toEqual([{ name: 'assigned users', ok: false, detail: expect.stringContaining('Okta refused the API token') }]);
    expect(result.teamviewer.ok).toBe(true);
    expect(renderValidation([result])).not.toContain(okta.token);
  });
});

describe('several syncs and the printed form', () => {
  it('checks every sync given, in order, each on its own', async () => {
    const config = configOf({ name: 'good' }, { name: 'refused', token: WRONG_TOKEN }, { name: 'no-groups', baseUrl: bare.baseUrl });
    const results = await validateSyncs(config, config.syncs, { log: silentLog });
    expect(results.map((r) => [r.sync, r.ok])).toEqual([
      ['good', true],
      ['refused', false],
      ['no-groups', true],
    ]);
    const [second] = await validateSyncs(config, [config.syncs[1]!], { log: silentLog });
    expect(second?.sync).toBe('refused');
    // An empty selection means every sync.
    expect((await validateSyncs(config, [], { log: silentLog })).map((r) => r.sync)).toEqual(['good', 'refused', 'no-groups']);

    const text = renderValidation(results);
    const blocks = text.split('\n\n');
    expect(blocks).toHaveLength(3);
    expect(blocks[0]?.split('\n')).toEqual([
      'sync good: ok',
      expect.stringMatching(/^ {2}✓ source · read export: 3 users, 0 groups in /),
      '  ✓ TeamViewer · authenticate and list users: the token was accepted; the company has 1 user',
      `  ✓ TeamViewer · token owner: the token belongs to ${OWNER} (Token Owner), who is never deactivated`,
      '  ✓ TeamViewer · user groups: the /Groups endpoint answers: user groups can be synced',
      '  ✓ TeamViewer · seats: 1 of 10000 seats used, 9999 free (not checked before creates: seats.enabled is off)',
      '  ✓ TeamViewer · Web API permissions: company licence: yes; users: yes; SSO domains: yes',
    ]);
    expect(blocks[1]?.split('\n')).toEqual([
      'sync refused: FAILED (1 check of 2 failed)',
      expect.stringMatching(/^ {2}✓ source · read export: /),
      expect.stringMatching(/^ {2}✗ TeamViewer · authenticate and list users: the token was refused: /),
    ]);
    expect(blocks[2]?.split('\n')[0]).toBe('sync no-groups: ok, with 2 warnings');
    expect(blocks[2]).toMatch(/✓ TeamViewer · user groups: warning: \/Groups is unavailable/);
    expectNoWrites();
  });
});
