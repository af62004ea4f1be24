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
  { seed: 1, users: 40_000, digest: '50e310df3d12ba84347a6c126bbbe9bc78db0815197258db746497374ba5fe80' },
  { seed: 1, users: 3000, digest: '01a937c5a828bc4052befb60fc831160b7c39e78ea3b1f5d6d83300d62279b2c' },
  { seed: 2, users: 3000, digest: '31222d3fd2a6e3e4da1ca360f4355245469667568880fd8c8f5afc9ecea0d900' },
  { seed: 3, users: 3000, digest: '98504e92e522d49029c6acab3202d8c4b18624f07d8ed9c610499dfe39cd829c' },
  { seed: 4, users: 3000, blocked: 'incomplete', digest: 'b94eed7f5c13bd6aca9834e362fa7f7f5c576f869e62776869fa68491a049260' },
  { seed: 5, users: 3000, blocked: 'teamviewer-empty', digest: 'f292ef5320016e294d4fc167fceca908e31a9726461cc8593401567389f9e791' },
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
