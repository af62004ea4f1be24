import { describe, expect, it } from 'vitest';
import { REDACTED, SecretScrubber, outsideText, registerSecret } from '../../src/net/secrets.js';

const TOKEN = '12345678-AbCdEfGhIjKlMnOpQrStUvWxYz/+=.~_-0987654321';

describe('SecretScrubber', () => {
  const scrubber = new SecretScrubber();
  scrubber.add(TOKEN);

  it('redacts the raw, URL-encoded, JSON-escaped and base64 forms', () => {
    for (const form of [
      TOKEN,
      encodeURIComponent(TOKEN),
      JSON.stringify(TOKEN).slice(1, -1),
      Buffer.from(TOKEN).toString('base64'),
      Buffer.from(`user:${TOKEN}`).toString('base64'),
      Buffer.from(`ab${TOKEN}`).toString('base64url'),
    ]) {
      const out = scrubber.scrub(`error: the request ${form} was refused`);
      expect(out).toContain(REDACTED);
      expect(out).not.toContain(form.slice(8, 24));
      expect(out.startsWith('error: the request ')).toBe(true);
    }
  });

  it('redacts a fragment left by a cut, and keeps ordinary text', () => {
    const cut = `invalid token ${TOKEN.slice(0, 14)}`;
    expect(scrubber.scrub(cut)).toBe(`invalid token ${REDACTED}`);
    expect(scrubber.scrub(`x${TOKEN.slice(20, 31)}y`)).toBe(`x${REDACTED}y`);
    expect(scrubber.scrub('nothing secret here at all')).toBe('nothing secret here at all');
  });

  it('scrubs every string of a nested value, keys included', () => {
    const value = { a: [TOKEN, { [TOKEN]: `x ${encodeURIComponent(TOKEN)}` }], n: 3, ok: true };
    const text = JSON.stringify(scrubber.scrubDeep(value));
    expect(text).not.toContain(TOKEN.slice(0, 8));
    expect(text).toContain('"n":3');
  });

  it('takes the body lines of a PEM key, not its armour', () => {
    const pem = `-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----`;
    const s = new SecretScrubber();
    s.add(pem);
    expect(s.scrub('-----BEGIN PRIVATE KEY----- is a header')).toBe('-----BEGIN PRIVATE KEY----- is a header');
    expect(s.scrub('key MIIEvQIBADANBgkqhkiG9w0BAQEFAAS')).toBe(`key ${REDACTED}`);
  });

  it('cuts outside text only after scrubbing, so no prefix survives the cut', () => {
    registerSecret(TOKEN);
    const body = `${'x'.repeat(290)} ${encodeURIComponent(TOKEN)}`;
    const out = outsideText(body, 300);
    expect(out).not.toContain(encodeURIComponent(TOKEN).slice(0, 8));
  });
});
