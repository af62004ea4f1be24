import { describe, expect, it } from 'vitest';
import { cycleIdOf, operationJobId } from '../../src/runtime/queues.js';

describe('cycle ids', () => {
  const due = Date.parse('2026-12-01T02:00:00.000Z');

  it('name a scheduled cycle by the time it was due, not when its job was made, the same on every delivery', () => {
    // The scheduler makes the next job one interval early: the id must not carry that time.
    const job = { id: `repeat:cycle-corp:${due}`, timestamp: due - 40 * 60_000 };
    expect(cycleIdOf(job)).toBe('20261201T020000-scheduled');
    expect(cycleIdOf({ ...job })).toBe(cycleIdOf(job));
  });

  it('name another cycle by when it was queued and its job number', () => {
    expect(cycleIdOf({ id: '12', timestamp: Date.parse('2026-12-01T01:54:30.123Z') })).toBe('20261201T015430-12');
  });

  it('are valid in BullMQ job ids (no ":", not all digits), operations included', () => {
    for (const id of [cycleIdOf({ id: `repeat:cycle-corp:${due}`, timestamp: due }), cycleIdOf({ id: 'a:b/c', timestamp: due })]) {
      expect(id).toMatch(/^[A-Za-z0-9_-]+$/);
      expect(operationJobId(id, 'user:1')).not.toContain(':');
    }
  });
});
