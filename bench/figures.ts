/** The middle value (the mean of the two middle ones for an even count): the figure of several runs on a noisy machine. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** One numeric field of a Redis INFO reply, or undefined where the reply has none. */
export function infoField(info: string, name: string): number | undefined {
  const value = new RegExp(`^${name}:([0-9.]+)`, 'm').exec(info)?.[1];
  return value === undefined ? undefined : Number(value);
}
