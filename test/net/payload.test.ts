import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { payloadReason } from '../../src/net/payload.js';

const schema = z.object({ id: z.string(), profile: z.object({ email: z.string(), name: z.string() }) });
const failed = (value: unknown) => {
  const parsed = schema.safeParse(value);
  if (parsed.success) throw new Error('expected a failed parse');
  return parsed.error;
};

describe('payloadReason', () => {
  it('names the first problem by its key path', () => {
    expect(payloadReason(failed({ id: 'a', profile: { email: 1, name: 'x' } }))).toBe('profile.email: Invalid input: expected string, received number');
  });

  it('names the record as a whole by the root word given', () => {
    expect(payloadReason(failed('text'))).toBe('record: Invalid input: expected object, received string');
    expect(payloadReason(failed('text'), { root: 'body' })).toBe('body: Invalid input: expected object, received string');
  });

  it('joins as many problems as asked for', () => {
    const error = failed({ profile: { email: 1 } });
    expect(payloadReason(error, { issues: 3 }).split('; ')).toEqual([
      'id: Invalid input: expected string, received undefined',
      'profile.email: Invalid input: expected string, received number',
      'profile.name: Invalid input: expected string, received undefined',
    ]);
  });
});
