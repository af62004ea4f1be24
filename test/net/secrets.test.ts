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

describe('SecretScrubber against a plain search', () => {
  /** The scrubber's output by cutting out every substring of every form it registered and looking it up. */
  function plain(scrubber: SecretScrubber, text: string): string {
    // The registered forms (raw, encoded, escaped, base64) are the scrubber's own; only the search differs.
    const forms = [...(scrubber as unknown as { forms: Map<string, { gram: number }> }).forms];
    const marks = Array.from({ length: text.length }, () => false);
    for (const [form, { gram }] of forms) {
      const grams = new Set<string>();
      for (let i = 0; i + gram <= form.length; i++) grams.add(form.slice(i, i + gram));
      for (let i = 0; i + gram <= text.length; i++) if (grams.has(text.slice(i, i + gram))) marks.fill(true, i, i + gram);
    }
    let out = '';
    for (let i = 0; i < text.length; i++) {
      if (!marks[i]) out += text[i];
      else if (i === 0 || !marks[i - 1]) out += REDACTED;
    }
    return out;
  }

  it('redacts exactly what cutting out every substring would, over random secrets and texts', () => {
    let seed = 7;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const alphabet = 'abcXYZ0189-_.~:/"\\ é€';
    const word = (n: number) => Array.from({ length: n }, () => alphabet[random(alphabet.length)]).join('');
    let redacted = 0;
    for (let round = 0; round < 300; round++) {
      const secret = word(4 + random(30));
      const scrubber = new SecretScrubber();
      scrubber.add(secret);
      // Text around whole secrets and fragments of them, at any place.
      const start = random(Math.max(1, secret.length - 7));
      const text = `${word(random(20))}${secret.slice(start, start + 8 + random(secret.length))}${word(random(20))}${random(2) ? secret : ''}${word(random(10))}`;
      const out = scrubber.scrub(text);
      expect(out).toBe(plain(scrubber, text));
      if (out !== text) redacted++;
    }
    // Most rounds hold a whole secret or a fragment long enough to be redacted.
    expect(redacted).toBeGreaterThan(150);
  });
});
