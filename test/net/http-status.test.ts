import { describe, expect, it } from 'vitest';
import { failureClassOfStatus, isThrottling } from '../../src/net/http-status.js';

describe('failureClassOfStatus', () => {
  it.each([
    [429, 'rate-limited'],
    [401, 'unauthorised'],
    [403, 'forbidden'],
    [404, 'not-found'],
    [408, 'transient'],
    [500, 'transient'],
    [502, 'transient'],
    [503, 'transient'],
    [501, 'transient'],
    [400, 'invalid'],
    [409, 'invalid'],
    [410, 'invalid'],
    [422, 'invalid'],
  ] as const)('HTTP %i is %s', (status, failureClass) => {
    expect(failureClassOfStatus(status)).toBe(failureClass);
  });
});

describe('isThrottling', () => {
  it('is a 429, with or without a wait, or a 5xx that says when to come back', () => {
    expect(isThrottling(429, undefined)).toBe(true);
    expect(isThrottling(429, 5000)).toBe(true);
    expect(isThrottling(503, 5000)).toBe(true);
    expect(isThrottling(503, undefined)).toBe(false);
    expect(isThrottling(400, 5000)).toBe(false);
  });
});
