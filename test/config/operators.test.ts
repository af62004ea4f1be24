import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { scrubSecrets, webhookUrlSecrets } from '../../src/net/secrets.js';
import { MINIMAL_CONFIG as minimal, configProblems as problems } from '../support/config.js';

const SLACK = 'https://hooks.slack.example/services/T0AAAAAAA/B0BBBBBBB/slackSecretPart0123456789';

describe('alerts and audit config', () => {
  it('is off by default', () => {
    const config = parseConfig(minimal, { env: { TV_TOKEN: 'tok-123' } });
    expect(config.alerts.webhooks).toEqual([]);
    expect(config.alerts).toMatchObject({ rateLimitPerMinute: 20, backlog: { waiting: 5000, age: 15 * 60_000 }, checkEvery: 30_000 });
    expect(config.audit).toEqual({ to: 'off' });
  });

  it('takes a webhook URL from the environment or a file, never written in the file, and registers its token', () => {
    const literal = `${minimal}alerts:\n  webhooks:\n    - { name: ops, url: '${SLACK}', format: slack }\n`;
    expect(problems(() => parseConfig(literal, { env: { TV_TOKEN: 'tok-123' } }))).toEqual([
      'alerts.webhooks[0].url: secrets must not be written in the config file; use ${ENV_VAR} or urlFile',
    ]);
    const dir = mkdtempSync(join(tmpdir(), 'tvsync-hook-'));
    writeFileSync(join(dir, 'hook-url'), `${SLACK}\n`);
    const fromFile = `${minimal}alerts:\n  webhooks:\n    - { name: ops, urlFile: hook-url, format: slack, conditions: [held, cycle-failed] }\n`;
    const config = parseConfig(fromFile, { env: { TV_TOKEN: 'tok-123' }, baseDir: dir });
    expect(config.alerts.webhooks).toEqual([{ name: 'ops', url: SLACK, format: 'slack', conditions: ['held', 'cycle-failed'] }]);
    // The token part is a secret from now on; the host and the common path words are not.
    expect(scrubSecrets(`posting to ${SLACK}`)).toBe('posting to https://hooks.slack.example/services/T0AAAAAAA/B0BBBBBBB/[REDACTED]');
    const fromEnv = `${minimal}alerts:\n  webhooks:\n    - { name: teams, url: '\${TEAMS_URL}', format: teams }\n`;
    expect(parseConfig(fromEnv, { env: { TV_TOKEN: 'tok-123', TEAMS_URL: 'https://example.test/hook' } }).alerts.webhooks[0]?.format).toBe('teams');
    // Other URLs stay plain values.
    expect(parseConfig(`${minimal}redis: { url: 'redis://127.0.0.1:6379' }\n`, { env: { TV_TOKEN: 'tok-123' } }).redis.url).toBe('redis://127.0.0.1:6379');
  });

  it('finds the credential parts of Slack and Teams workflow URLs', () => {
    expect(webhookUrlSecrets(SLACK)).toEqual(['slackSecretPart0123456789']);
    const teams =
      'https://prod-12.westeurope.logic.azure.com:443/workflows/0123456789abcdef0123456789abcdef/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=SigPart0123456789abcdefABCDEF';
    expect(webhookUrlSecrets(teams)).toEqual(['0123456789abcdef0123456789abcdef', 'SigPart0123456789abcdefABCDEF']);
  });

  it("takes a URL's password for a secret whatever its length or letters, and a stray % in the path does not fail the config", () => {
    expect(webhookUrlSecrets('https://alerts:hunter22@hooks.example/notify')).toContain('hunter22');
    expect(webhookUrlSecrets('https://alerts:correcthorse@hooks.example/notify')).toContain('correcthorse');
    expect(webhookUrlSecrets('https://hooks.example/100%off/Token0123456789abc')).toEqual(['Token0123456789abc']);
    const config = parseConfig(`${minimal}alerts:\n  webhooks:\n    - { name: a, url: '\${U}' }\n`, {
      env: { TV_TOKEN: 'tok-123', U: 'https://alerts:pa55word@hooks.example/notify' },
    });
    expect(config.alerts.webhooks).toHaveLength(1);
    expect(scrubSecrets('the receiver said: bad credentials pa55word')).not.toContain('pa55word');
  });

  it('refuses an unknown alert kind, a file audit without a path, and an odd syslog protocol', () => {
    const env = { TV_TOKEN: 'tok-123', U: 'https://example.test/h' };
    expect(problems(() => parseConfig(`${minimal}alerts:\n  webhooks:\n    - { name: a, url: '\${U}', conditions: [bogus] }\n`, { env }))[0]).toMatch(
      /^alerts\.webhooks\[0\]\.conditions\[0\]: /,
    );
    expect(problems(() => parseConfig(`${minimal}audit: { to: file }\n`, { env }))).toEqual(['audit.path: to: file needs a path']);
    expect(problems(() => parseConfig(`${minimal}audit: { to: syslog, syslog: { protocol: tls } }\n`, { env }))[0]).toMatch(/^audit\.syslog\.protocol: /);
    const syslog = parseConfig(`${minimal}audit: { to: syslog, syslog: { host: siem.example, protocol: tcp } }\n`, { env });
    expect(syslog.audit.syslog).toEqual({ host: 'siem.example', port: 514, protocol: 'tcp', facility: 13, appName: 'tvsync' });
  });
});
