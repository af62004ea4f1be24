import { z } from 'zod';

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** "40m", "6h", "1d", "500ms" or a number of milliseconds. */
export const durationSchema = z
  .union([z.number().int().nonnegative(), z.string().regex(/^\d+(ms|s|m|h|d)$/, 'expected a duration like 30s, 40m, 6h or 1d')])
  .transform((value) => {
    if (typeof value === 'number') return value;
    const match = /^(\d+)(ms|s|m|h|d)$/.exec(value);
    return Number(match?.[1]) * UNIT_MS[(match?.[2] ?? 'ms') as keyof typeof UNIT_MS];
  });

/**
 * A duration within the range that can work: a zero schedule or timeout, or one of years, is a
 * typo, and is refused with the key path rather than found out at run time.
 */
export function durationBetween(minMs: number, maxMs: number) {
  const range = minMs === 0 ? `of at most ${formatDuration(maxMs)}` : `from ${formatDuration(minMs)} to ${formatDuration(maxMs)}`;
  return durationSchema.refine((ms) => ms >= minMs && ms <= maxMs, {
    error: (issue) => `expected a duration ${range}, not ${formatDuration(issue.input as number)}`,
  });
}

export function formatDuration(ms: number): string {
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
