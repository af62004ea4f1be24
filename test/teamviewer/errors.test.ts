import { describe, expect, it } from 'vitest';
import { SyncError } from '../../src/model/failure.js';
import { SCIM_ERROR_SCHEMA } from '../../src/model/teamviewer.js';
import { NoAnswerError, classifyHttpFailure, isEndpointUnavailable } from '../../src/teamviewer/errors.js';

const scimError = (status: number, detail: string, scimType?: string) => ({
  schemas: [SCIM_ERROR_SCHEMA],
  status: String(status),
  ...(scimType ? { scimType } : {}),
  detail,
});
const webError = (error: string, description: string, code: number) => ({
  error,
  error_description: description,
  error_code: code,
  error_signature: '0123abcd',
});

describe('classifyHttpFailure', () => {
  it('formats a SCIM conflict as method, path, status, class, scimType and detail', () => {
    const err = classifyHttpFailure({
      method: 'post',
      path: '/Users',
      status: 409,
      body: scimError(409, 'User already exists', 'uniqueness'),
    });
    expect(err).toBeInstanceOf(SyncError);
    expect(err.failureClass).toBe('conflict');
    expect(err.status).toBe(409);
    expect(err.maybeApplied).toBe(false);
    expect(err.message).toBe('POST /Users → 409 conflict (uniqueness): User already exists');
  });

  it('reads a SCIM error body that arrives as JSON text', () => {
    const err = classifyHttpFailure({
      method: 'POST',
      path: '/Users',
      status: 400,
      body: JSON.stringify(scimError(400, 'bad name', 'invalidValue')),
    });
    expect(err.failureClass).toBe('invalid');
    expect(err.message).toBe('POST /Users → 400 invalid (invalidValue): bad name');
  });

  it.each([
    ['scimType uniqueness on a 400', 400, scimError(400, 'taken', 'uniqueness')],
    ['a 400 saying the e-mail already exists', 400, scimError(400, 'The email address is already in use.')],
    ['a Web API 400 saying the user already exists', 400, webError('invalid_request', 'User already exists', 400)],
    ['raw text saying the userName exists already', 400, 'userName exists already'],
  ])('treats %s as a conflict', (_label, status, body) => {
    expect(classifyHttpFailure({ method: 'POST', path: '/Users', status, body }).failureClass).toBe('conflict');
  });

  it('rates 429 as rate-limited with Retry-After in seconds', () => {
    const err = classifyHttpFailure({ method: 'GET', path: '/Users', status: 429, headers: { 'Retry-After': '7' } });
    expect(err.failureClass).toBe('rate-limited');
    expect(err.retryAfterMs).toBe(7000);
    expect(err.retryable).toBe(true);
    expect(err.message).toContain('wait 7 s');
  });

  it('rates 429 with an HTTP-date Retry-After', () => {
    const at = new Date(Date.now() + 60_000).toUTCString();
    const err = classifyHttpFailure({ method: 'GET', path: '/Users', status: 429, headers: { 'retry-after': at } });
    expect(err.failureClass).toBe('rate-limited');
    expect(err.retryAfterMs).toBeGreaterThan(55_000);
    expect(err.retryAfterMs).toBeLessThanOrEqual(60_000);
  });

  it.each(['rate_limit_reached', 'too_many_retries'])('rates a Web API %s body as rate-limited whatever the status', (tag) => {
    const err = classifyHttpFailure({ method: 'GET', path: '/Users', status: 400, body: webError(tag, 'slow down', 400) });
    expect(err.failureClass).toBe('rate-limited');
    expect(err.retryAfterMs).toBeUndefined();
    expect(err.message).toBe(`GET /Users → 400 rate-limited (${tag}): slow down. TeamViewer asks to slow down; retrying with backoff.`);
  });

  it.each([500, 502, 503, 504, 408])('rates %i as transient; maybe applied only for POST', (status) => {
    const get = classifyHttpFailure({ method: 'GET', path: '/Users', status });
    const patch = classifyHttpFailure({ method: 'PATCH', path: '/Users/u1', status });
    const post = classifyHttpFailure({ method: 'POST', path: '/Users', status, body: '<html>Bad gateway</html>' });
    expect([get.failureClass, patch.failureClass, post.failureClass]).toEqual(['transient', 'transient', 'transient']);
    expect([get.maybeApplied, patch.maybeApplied, post.maybeApplied]).toEqual([false, false, true]);
    expect(post.message).toContain('<html>Bad gateway</html>');
  });

  it.each([
    ['401', 401, undefined],
    ['invalid_token', 400, webError('invalid_token', 'Token invalid', 400)],
    ['token_expired', 400, webError('token_expired', 'Token expired', 400)],
  ])('rates %s as unauthorised, with advice about the token', (_label, status, body) => {
    const err = classifyHttpFailure({ method: 'GET', path: '/Users', status, body });
    expect(err.failureClass).toBe('unauthorised');
    expect(err.retryable).toBe(false);
    expect(err.message).toMatch(/script token is invalid, expired or revoked/);
  });

  it('rates 403 and invalid_permission as forbidden', () => {
    expect(classifyHttpFailure({ method: 'PATCH', path: '/Users/u1', status: 403 }).failureClass).toBe('forbidden');
    const err = classifyHttpFailure({
      method: 'PATCH',
      path: '/Users/u1',
      status: 400,
      body: webError('invalid_permission', 'Insufficient rights', 400),
    });
    expect(err.failureClass).toBe('forbidden');
    expect(err.message).toMatch(/^PATCH \/Users\/u1 → 400 forbidden \(invalid_permission\): Insufficient rights\. The script token lacks/);
  });

  it('rates 404 as not-found and other 4xx as invalid', () => {
    expect(classifyHttpFailure({ method: 'GET', path: '/Users/u9', status: 404 }).failureClass).toBe('not-found');
    expect(classifyHttpFailure({ method: 'GET', path: '/Users/u9', status: 404 }).message).toBe('GET /Users/u9 → 404 not-found: no detail given');
    expect(classifyHttpFailure({ method: 'POST', path: '/Users', status: 422, body: 'bad' }).failureClass).toBe('invalid');
    expect(classifyHttpFailure({ method: 'POST', path: '/Users', status: 400, body: webError('invalid_request', 'Bad Request', 400) }).failureClass).toBe(
      'invalid',
    );
  });

  it('cuts long raw text to about 300 characters and collapses whitespace', () => {
    const err = classifyHttpFailure({ method: 'GET', path: '/Users', status: 400, body: `a\n\n  b ${'x'.repeat(1000)}` });
    const detail = err.message.slice('GET /Users → 400 invalid: '.length);
    expect(detail.startsWith('a b xxx')).toBe(true);
    expect(detail.length).toBe(301);
    expect(detail.endsWith('…')).toBe(true);
  });

  it('blanks a bearer token echoed back in an error body', () => {
    const err = classifyHttpFailure({
      method: 'GET',
      path: '/Users',
      status: 400,
      body: 'rejected header Authorization: Bearer 1234567-abcDEF.ghi',
    });
    expect(err.message).not.toContain('abcDEF');
    expect(err.message).toContain('Bearer [REDACTED]');
  });

  describe('without an answer', () => {
    it.each(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'ECONNABORTED'])('rates %s as transient', (code) => {
      const err = classifyHttpFailure({ method: 'GET', path: '/Users', code });
      expect(err.failureClass).toBe('transient');
      expect(err.status).toBeUndefined();
      expect(err.message).toContain(`GET /Users → ${code} transient`);
      // The connection check names the cause of a missing answer by this code.
      expect(err).toBeInstanceOf(NoAnswerError);
      expect((err as NoAnswerError).code).toBe(code);
    });

    it('keeps an answer, even a 5xx, apart from no answer at all', () => {
      expect(classifyHttpFailure({ method: 'GET', path: '/Users', status: 503 })).not.toBeInstanceOf(NoAnswerError);
      expect(classifyHttpFailure({ method: 'GET', path: '/Users' })).toMatchObject({ code: 'network error', failureClass: 'transient' });
    });

    it('marks a POST that timed out or lost its connection as maybe applied, not one that never connected', () => {
      expect(classifyHttpFailure({ method: 'POST', path: '/Users', code: 'ECONNABORTED' }).maybeApplied).toBe(true);
      expect(classifyHttpFailure({ method: 'POST', path: '/Users', code: 'ECONNRESET' }).maybeApplied).toBe(true);
      expect(classifyHttpFailure({ method: 'POST', path: '/Users', code: 'ECONNREFUSED' }).maybeApplied).toBe(false);
      expect(classifyHttpFailure({ method: 'PATCH', path: '/Users/u1', code: 'ECONNABORTED' }).maybeApplied).toBe(false);
    });

    it('says a timeout is a timeout', () => {
      expect(classifyHttpFailure({ method: 'GET', path: '/Users', code: 'ETIMEDOUT' }).message).toMatch(/no whole answer in time/);
    });
  });
});

describe('isEndpointUnavailable', () => {
  const failure = (status: number, path: string) => classifyHttpFailure({ method: 'GET', path, status });

  it('reads 404 on the /Groups collection as no group endpoint', () => {
    expect(isEndpointUnavailable(failure(404, '/Groups'), '/Groups')).toBe(true);
  });

  it('reads 405 and 501 anywhere under /Groups as unsupported', () => {
    expect(isEndpointUnavailable(failure(405, '/Groups/g1'), '/Groups/g1')).toBe(true);
    expect(isEndpointUnavailable(failure(501, '/Groups'), '/Groups')).toBe(true);
  });

  it('keeps a 404 on one group, and anything on /Users, as it was', () => {
    expect(isEndpointUnavailable(failure(404, '/Groups/g1'), '/Groups/g1')).toBe(false);
    expect(isEndpointUnavailable(failure(404, '/Users'), '/Users')).toBe(false);
    expect(isEndpointUnavailable(failure(501, '/Users'), '/Users')).toBe(false);
    expect(isEndpointUnavailable(failure(500, '/Groups'), '/Groups')).toBe(false);
  });
});
