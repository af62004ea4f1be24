import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { RateState } from '../net/adaptive-rate.js';
import { type KeyPrefix, syncKeys } from './keys.js';

const stateSchema = z.object({
  rate: z.number().positive(),
  throttledAt: z.number().positive().optional(),
  latencyFloorMs: z.number().nonnegative().optional(),
});

/** Learned rates are kept a week: long enough to outlive restarts and quiet weekends, not stale limits. */
const KEEP_MS = 7 * 86_400_000;

// A cut always lands (the lower of the stored and the new rate); a rise only when nobody changed
// the rate since this replica read it, so that replicas never talk each other up past a 429.
const APPLY = `
local raw = redis.call('GET', KEYS[1])
local base = tonumber(ARGV[1])
local nextRate = tonumber(ARGV[2])
if raw then
  local current = cjson.decode(raw)
  if math.abs(current.rate - base) > 1e-9 and (nextRate >= base or current.rate <= nextRate) then return raw end
end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
return ARGV[3]
`;

/** The request rate a sync learned, shared by every replica of it. */
export class RequestRateStore {
  private readonly key: string;

  constructor(
    private readonly redis: Redis,
    prefix: KeyPrefix,
    sync: string,
  ) {
    this.key = syncKeys(prefix, sync).requestRate;
  }

  async load(): Promise<RateState | undefined> {
    return parse(await this.redis.get(this.key));
  }

  /** Moves the shared rate from `base` (what this replica read) to `next`; returns the rate in force afterwards. */
  async apply(base: number, next: RateState): Promise<RateState> {
    const stored: RateState = { rate: next.rate };
    if (next.throttledAt !== undefined) stored.throttledAt = next.throttledAt;
    if (next.latencyFloorMs !== undefined) stored.latencyFloorMs = next.latencyFloorMs;
    const raw = await this.redis.eval(APPLY, 1, this.key, String(base), String(next.rate), JSON.stringify(stored), String(KEEP_MS));
    return parse(typeof raw === 'string' ? raw : null) ?? stored;
  }
}

function parse(raw: string | null): RateState | undefined {
  if (!raw) return undefined;
  try {
    const parsed = stateSchema.safeParse(JSON.parse(raw));
    if (!parsed.success) return undefined;
    const state: RateState = { rate: parsed.data.rate };
    if (parsed.data.throttledAt !== undefined) state.throttledAt = parsed.data.throttledAt;
    if (parsed.data.latencyFloorMs !== undefined) state.latencyFloorMs = parsed.data.latencyFloorMs;
    return state;
  } catch {
    return undefined;
  }
}
