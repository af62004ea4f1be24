import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import type { TeamViewerPort } from '../teamviewer/port.js';

const TAKE_COMMAND = 'tvsyncTakeRequestSlot';
type WithTakeScript = Record<typeof TAKE_COMMAND, (key: string, max: number, durationMs: number, wanted: number) => Promise<[number, number]>>;

/*
 * The operation queue's limiter counts in a key BullMQ keeps: INCR per job started, PEXPIRE on the
 * window's first, and no job starts while the count is at max. Slots taken here are counted in the
 * same key, so a job that sends several requests spends the same budget, on every replica. A 429
 * pause (queue.rateLimit) sets the count above any max. Asks for up to ARGV[3] slots; replies
 * {slots granted, 0}, or {0, milliseconds until the window ends} when it is full.
 */
const TAKE_SCRIPT = `
local max = tonumber(ARGV[1])
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count >= max then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 then return {0, ttl} end
  redis.call('DEL', KEYS[1])
  count = 0
end
local granted = math.min(tonumber(ARGV[3]), max - count)
redis.call('INCRBY', KEYS[1], granted)
if count == 0 or redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return {granted, 0}
`;

/** The request budget of an operation queue's limiter (max requests per window, on every replica). */
export class RequestSlots {
  constructor(
    private readonly redis: Redis,
    private readonly limiterKey: string,
    /** The worker's limiter in force: the learned rate sets it anew while jobs run. */
    private readonly limits: () => { max: number; duration: number },
  ) {
    if (!(TAKE_COMMAND in redis)) redis.defineCommand(TAKE_COMMAND, { numberOfKeys: 1, lua: TAKE_SCRIPT });
  }

  /**
   * Waits until the window has room, and counts up to `wanted` requests in it (at least one, and
   * no more than a small share of the window, so slots taken ahead of use barely spill into the
   * next window). Returns how many were counted.
   */
  async take(wanted: number): Promise<number> {
    for (;;) {
      const { max, duration } = this.limits();
      const ask = Math.max(1, Math.min(wanted, Math.floor(max / AHEAD_SHARE)));
      const [granted, waitMs] = await (this.redis as unknown as WithTakeScript)[TAKE_COMMAND](this.limiterKey, max, duration, ask);
      if (granted > 0) return granted;
      await sleep(Math.max(1, waitMs));
    }
  }
}

/** A job takes at most 1/AHEAD_SHARE of a window's requests ahead of sending them. */
const AHEAD_SHARE = 100;

/**
 * The client of a job that sends several requests: each request after the first takes a slot of
 * the limiter (the job's start was counted as its first). `expected()` says how many more the job
 * is likely to send, so slots are fetched a few at a time rather than one round trip each.
 */
export function withRequestSlots(client: TeamViewerPort, slots: RequestSlots, expected: () => number): TeamViewerPort {
  let free = 1;
  const slot = async <T>(call: () => Promise<T>): Promise<T> => {
    if (free === 0) free = await slots.take(expected());
    free--;
    return call();
  };
  return {
    listUsers: (opts) => slot(() => client.listUsers(opts)),
    getUser: (id) => slot(() => client.getUser(id)),
    getTokenOwner: (opts) => slot(() => client.getTokenOwner(opts)),
    listGroups: (opts) => slot(() => client.listGroups(opts)),
    findUserByEmail: (email) => slot(() => client.findUserByEmail(email)),
    createUser: (user) => slot(() => client.createUser(user)),
    updateUser: (id, changes) => slot(() => client.updateUser(id, changes)),
    findGroupByName: (name) => slot(() => client.findGroupByName(name)),
    createGroup: (displayName, memberIds) => slot(() => client.createGroup(displayName, memberIds)),
    renameGroup: (id, displayName) => slot(() => client.renameGroup(id, displayName)),
    addGroupMembers: (id, memberIds) => slot(() => client.addGroupMembers(id, memberIds)),
    removeGroupMembers: (id, memberIds) => slot(() => client.removeGroupMembers(id, memberIds)),
    deleteGroup: (id) => slot(() => client.deleteGroup(id)),
  };
}
