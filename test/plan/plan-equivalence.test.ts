import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { computePlan } from '../../src/plan/diff.js';
import { generatedPlanInput } from '../support/generated-plan-input.js';

/*
 * The user plan was restructured for a million users (flat indexes instead of per-user objects and
 * maps). These digests are of the plans the implementation before that gave for the same generated
 * inputs: every operation, skip, link change, notice and count must stay exactly as it was.
 */
const CASES: { seed: number; users: number; blocked?: 'incomplete' | 'teamviewer-empty'; digest: string }[] = [
  { seed: 1, users: 40_000, digest: '9a55a4da7f4930d48f48c036527033bce2fbda832afda018e9faa602d18f800a' },
  { seed: 1, users: 3000, digest: 'cb2996a3b12e4d0bbfde5660f6f441d08a551649c327bdfc1108cfacf6a11446' },
  { seed: 2, users: 3000, digest: 'b70be0309d0bfcc6720464c16cb7c7f1d125c6061a350e5c0766874c753e86c7' },
  { seed: 3, users: 3000, digest: '22750beeee4215918ca76c364424e9a3f45492d5f6bf35db7bb08e55c2b7261a' },
  { seed: 4, users: 3000, blocked: 'incomplete', digest: '59ccdaf300c0767f428d89d13d36fe2e8d6180892c52c0eebbf3bd9537e41630' },
  { seed: 5, users: 3000, blocked: 'teamviewer-empty', digest: 'e8170afbbd8531fbf38637e2950d66b762794f4e543bade87875c41fc9997cc1' },
];

describe('a large generated input plans as before', () => {
  for (const { seed, users, blocked, digest } of CASES) {
    it(`seed ${seed}, ${users} users${blocked ? `, ${blocked}` : ''}`, () => {
      const input = generatedPlanInput(seed, users, blocked ? { blocked } : {});
      const plan = computePlan(input);
      // The input exercises the rules, or the digest would prove little.
      expect(plan.operations.length).toBeGreaterThan(users / 10);
      expect(Object.keys(plan.summary.skipped).length).toBeGreaterThanOrEqual(blocked === 'teamviewer-empty' ? 3 : 8);
      expect(createHash('sha256').update(JSON.stringify(plan)).digest('hex')).toBe(digest);
    });
  }
});
