import { describe, expect, it } from 'vitest';
import { collectSecrets, createLogger } from '../../src/observe/log.js';

function capture() {
  const lines: string[] = [];
  return { lines, destination: { write: (line: string) => void lines.push(line) } };
}

describe('log redaction', () => {
  const config = {
    syncs: [{ target: { token: 'tv-secret-token-123', baseUrl: 'https://x' }, source: { type: 'okta', apiToken: 'okta-tok-456' } }],
    http: { triggerToken: 'trigger-token-789xyz' },
  };

  it('collects every configured secret', () => {
    expect([...collectSecrets(config)].sort()).toEqual(['okta-tok-456', 'trigger-token-789xyz', 'tv-secret-token-123']);
  });

  it('blanks secret fields and headers', () => {
    const { lines, destination } = capture();
    const log = createLogger({ destination });
    log.info({ target: { token: 'abc-def-ghi' }, headers: { authorization: 'Bearer abc-def-ghi', 'x-api-key': 'k-1234' }, apiKey: 'k-1234' }, 'calling');
    const line = lines.join('');
    expect(line).not.toContain('abc-def-ghi');
    expect(line).not.toContain('k-1234');
    expect(line).toContain('[REDACTED]');
  });

  it('scrubs secret values that slipped into messages and errors', () => {
    const { lines, destination } = capture();
    const log = createLogger({ destination, secrets: collectSecrets(config) });
    const err = new Error('request failed with header Bearer tv-secret-token-123');
    log.error({ err, detail: { nested: { deep: 'okta-tok-456 in a deep field' } } }, 'failed using "trigger-token-789xyz"');
    const line = lines.join('');
    for (const secret of collectSecrets(config)) expect(line).not.toContain(secret);
    expect(line.match(/\[REDACTED\]/g)?.length).toBeGreaterThanOrEqual(3);
    expect(() => JSON.parse(line)).not.toThrow();
  });
});
