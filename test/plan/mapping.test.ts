import { describe, expect, it } from 'vitest';
import { deriveName, emailKey, mapDirectoryUser, normaliseLanguage } from '../../src/plan/mapping.js';

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
    expect(mapped).toEqual({ ok: true, sourceId: '1', email: 'Jane.Doe@Example.COM', emailKey: 'jane.doe@example.com', displayName: 'Jane Doe', active: true, preferredLanguage: 'fr' });
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
});
