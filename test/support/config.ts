import { ConfigError } from '../../src/config/load.js';

/** The smallest config the schema takes: one file sync, its token from TV_TOKEN. */
export const MINIMAL_CONFIG = `
syncs:
  - name: corp
    source: { type: file, path: ./export }
    target:
      token: \${TV_TOKEN}
`;

/** The problems a config that must be refused is refused with. */
export function configProblems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}
