import { describe, expect, it } from 'vitest';
import { InFlightLimit, withinLimit } from '../../src/runtime/in-flight.js';
import type { TeamViewerPort } from '../../src/teamviewer/port.js';
import type { TvUser } from '../../src/model/teamviewer.js';

/** A client whose calls take a while and which counts how many run at once. */
function countingClient() {
  let now = 0;
  const seen = { most: 0, calls: [] as string[] };
  const slow = async <T>(name: string, value: T): Promise<T> => {
    now++;
    seen.most = Math.max(seen.most, now);
    seen.calls.push(name);
    await new Promise((r) => setTimeout(r, 5));
    now--;
    if (name === 'updateUser:bad') throw new Error('refused');
    return value;
  };
  const user = (id: string): TvUser => ({ id, userName: `${id}@corp.example`, email: `${id}@corp.example`, displayName: id, active: true });
  const client = {
    createUser: (u: { userName: string }) => slow('createUser', user(u.userName)),
    updateUser: (id: string) => slow(`updateUser:${id}`, user(id)),
    findUserByEmail: (email: string) => slow('findUserByEmail', user(email)),
  } as unknown as TeamViewerPort;
  return { client, seen };
}

describe('the TeamViewer calls of the operation workers', () => {
  it('never run more at once than the limit, however many jobs call, and each gets its own answer', async () => {
    const { client, seen } = countingClient();
    const limited = withinLimit(client, new InFlightLimit(3));
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => limited.createUser({ userName: `u${i}`, displayName: `U ${i}`, active: true })));
    expect(seen.most).toBe(3);
    expect(answers.map((a) => a.id)).toEqual(Array.from({ length: 20 }, (_, i) => `u${i}`));
  });

  it('frees the place of a call that failed', async () => {
    const { client, seen } = countingClient();
    const limit = new InFlightLimit(1);
    const limited = withinLimit(client, limit);
    await expect(limited.updateUser('bad', {})).rejects.toThrow('refused');
    // The next call is not left waiting for a place the failed one never gave back.
    await expect(limited.findUserByEmail('a@corp.example')).resolves.toMatchObject({ id: 'a@corp.example' });
    expect(seen.most).toBe(1);
  });
});
