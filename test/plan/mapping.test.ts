import { describe, expect, it } from 'vitest';
import { clip, deriveName, emailKey, groupValueProblem, mapDirectoryUser, normaliseLanguage } from '../../src/plan/mapping.js';

describe('name rules', () => {
  it('prefers displayName', () => {
    expect(deriveName({ displayName: 'Jane Q. Doe', formattedName: 'Jane Doe', givenName: 'Jane', familyName: 'Doe' })).toBe('Jane Q. Doe');
  });
  it('falls back to name.formatted', () => {
    expect(deriveName({ displayName: '  ', formattedName: 'Jane Doe', givenName: 'J', familyName: 'D' })).toBe('Jane Doe');
  });
  it('falls back to givenName + " " + familyName', () => {
    expect(deriveName({ givenName: 'Jane', familyName: 'Doe' })).toBe('Jane Doe');
  });
  it('uses a lone given or family name', () => {
    expect(deriveName({ givenName: 'Cher' })).toBe('Cher');
    expect(deriveName({ familyName: 'Doe' })).toBe('Doe');
  });
  it('collapses white space', () => {
    expect(deriveName({ displayName: '  Jane \t  Doe ' })).toBe('Jane Doe');
  });
  it('gives nothing when no part is usable', () => {
    expect(deriveName({ displayName: '', givenName: ' ', familyName: undefined })).toBeUndefined();
  });
});

describe('language normalisation', () => {
  it.each([
    ['de_DE', 'de'],
    ['de-DE', 'de'],
    ['DE', 'de'],
    ['en-US', 'en'],
    ['pt-BR', 'pt'],
    ['nb-NO', 'no'],
    ['zh-TW', 'zh_TW'],
    ['zh-Hant-HK', 'zh_TW'],
    ['zh-CN', 'zh_CN'],
    ['zh', 'zh_CN'],
  ])('%s → %s', (input, expected) => {
    expect(normaliseLanguage(input)).toBe(expected);
  });
  it.each([['xx-YY'], ['klingon'], [''], [undefined]])('%s → left out', (input) => {
    expect(normaliseLanguage(input)).toBeUndefined();
  });
});

describe('mapDirectoryUser', () => {
  it('keeps the e-mail exactly as the IdP holds it and matches on its lower case', () => {
    const mapped = mapDirectoryUser({ id: '1', email: ' Jane.Doe@Example.COM ', displayName: 'Jane Doe', active: true, preferredLanguage: 'fr-CA' });
    expect(mapped).toEqual({
      ok: true,
      sourceId: '1',
      email: 'Jane.Doe@Example.COM',
      emailKey: 'jane.doe@example.com',
      displayName: 'Jane Doe',
      active: true,
      preferredLanguage: 'fr',
    });
  });
  it('leaves an unknown language out', () => {
    const mapped = mapDirectoryUser({ id: '1', email: 'a@x.test', displayName: 'A', active: true, preferredLanguage: 'tlh' });
    expect(mapped.ok && 'preferredLanguage' in mapped).toBe(false);
  });
  it('skips a user without an e-mail, with a reason', () => {
    const mapped = mapDirectoryUser({ id: '7', displayName: 'No Mail', active: true });
    expect(mapped).toMatchObject({ ok: false, reason: 'no-email', sourceId: '7' });
  });
  it('skips an e-mail that is not an address', () => {
    expect(mapDirectoryUser({ id: '7', email: 'jane', displayName: 'J', active: true })).toMatchObject({ ok: false, reason: 'invalid-email' });
    expect(mapDirectoryUser({ id: '7', email: 'jane doe@x.test', displayName: 'J', active: true })).toMatchObject({ ok: false, reason: 'invalid-email' });
  });
  it('skips a user without any name', () => {
    const mapped = mapDirectoryUser({ id: '8', email: 'a@x.test', active: true });
    expect(mapped).toMatchObject({ ok: false, reason: 'no-name', email: 'a@x.test' });
    expect(mapped.ok ? '' : mapped.message).toContain('a@x.test');
  });
  it('emailKey lower-cases and trims', () => {
    expect(emailKey(' A@B.Test ')).toBe('a@b.test');
  });
  it('emailKey is the same for an address in NFC and in NFD', () => {
    const nfc = 'Jos\u00e9@B\u00fcro.test';
    const nfd = 'Jose\u0301@Bu\u0308ro.test';
    expect(nfc).not.toBe(nfd);
    expect(emailKey(nfd)).toBe(emailKey(nfc));
    expect(emailKey(nfd)).toBe('jos\u00e9@b\u00fcro.test');
  });
});

describe('over-long values', () => {
  const tenMegabytes = 'N'.repeat(10 * 1024 * 1024);
  it('skips a user whose displayName is longer than the cap, naming the field and its length, never echoing it whole', () => {
    const mapped = mapDirectoryUser({ id: '9', email: 'a@x.test', displayName: tenMegabytes, active: true });
    expect(mapped).toMatchObject({ ok: false, reason: 'value-too-long', sourceId: '9', email: 'a@x.test' });
    const message = mapped.ok ? '' : mapped.message;
    expect(message).toContain('displayName of 10485760 characters');
    expect(message).toContain('more than the 256');
    expect(message.length).toBeLessThan(300);
  });
  it.each([
    ['email', { email: `${'a'.repeat(248)}@x.test` }, 255],
    ['givenName', { displayName: undefined, givenName: 'G'.repeat(257) }, 257],
    ['preferredLanguage', { preferredLanguage: 'x'.repeat(36) }, 36],
    ['id', { id: 'i'.repeat(1025) }, 1025],
  ] as const)('skips a user whose %s is over its cap', (field, over, length) => {
    const mapped = mapDirectoryUser({ id: '9', email: 'a@x.test', displayName: 'A', active: true, ...over });
    expect(mapped).toMatchObject({ ok: false, reason: 'value-too-long', message: expect.stringContaining(`${field} of ${length} characters`) });
    if (!mapped.ok) expect(mapped.sourceId.length).toBeLessThan(100);
  });
  it('takes values at the cap, and counts a value without its surrounding white space', () => {
    expect(
      mapDirectoryUser({ id: 'i'.repeat(1024), email: 'a@x.test', displayName: ` ${'N'.repeat(256)} `, active: true, preferredLanguage: 'x'.repeat(35) }).ok,
    ).toBe(true);
  });
  it('skips a group whose id or name is over the cap', () => {
    expect(groupValueProblem({ id: 'g', name: 'G'.repeat(257) })).toMatchObject({ field: 'name', message: expect.stringContaining('name of 257 characters') });
    expect(groupValueProblem({ id: 'g'.repeat(1025), name: 'G' })).toMatchObject({ field: 'id' });
    expect(groupValueProblem({ id: 'g', name: 'G'.repeat(256) })).toBeUndefined();
  });
  it('clip keeps the start and says how long the value was, without splitting a character', () => {
    expect(clip('short')).toBe('short');
    expect(clip('x'.repeat(100), 10)).toBe('xxxxxxxxxx… (100 characters)');
    expect(clip(`${'x'.repeat(9)}😀rest`, 10)).toBe('xxxxxxxxx… (15 characters)');
  });
});
