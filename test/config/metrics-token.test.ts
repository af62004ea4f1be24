import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { scrubSecrets } from '../../src/net/secrets.js';

const withHttp = (http: string) => `
http: ${http}
syncs:
  - name: corp
    source: { type: file, path: ./export }
    target:
      token: \${TV_TOKEN}
`;

function problems(text: string, env: Record<string, string>): string[] {
  try {
    parseConfig(text, { env });
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('http.metricsToken', () => {
  it('is off by default', () => {
    expect(parseConfig(withHttp('{ port: 9464 }'), { env: { TV_TOKEN: 'tok-123' } }).http.metricsToken).toBeUndefined();
  });

  it('is a secret: from ${ENV} (then scrubbed from any text), never written literally, at least 16 characters', () => {
    const token = 'metrics-secret-0123456789';
    const config = parseConfig(withHttp('{ metricsToken: "${METRICS}" }'), { env: { TV_TOKEN: 'tok-123', METRICS: token } });
    expect(config.http.metricsToken).toBe(token);
    expect(scrubSecrets(`Bearer ${token}`)).not.toContain(token);
    expect(problems(withHttp(`{ metricsToken: ${token} }`), { TV_TOKEN: 'tok-123' })).toEqual([
      expect.stringMatching(/^http\.metricsToken: secrets must not be written in the config file/),
    ]);
    expect(problems(withHttp('{ metricsToken: "${METRICS}" }'), { TV_TOKEN: 'tok-123', METRICS: 'short' })).toEqual([
      expect.stringMatching(/^http\.metricsToken: .*16 characters/),
    ]);
  });
});
