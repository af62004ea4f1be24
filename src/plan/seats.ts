import type { CreateUserOperation, Plan, SkippedItem } from './types.js';

/*
 * Seats before creates: a plan never creates more users than the licence has free seats. Pure: the
 * licence is read by the runtime and passed in.
 */

/** One entry of the company's `available_licenses`, as far as seats go. */
export interface LicenceSeats {
  active: boolean;
  assignedUsers: number;
  /** Absent: the licence states no user limit (an add-on), and does not count. */
  maxAssignments?: number;
}

/** The seats of the licence(s) that count, at planning time; `waiting` creates were held for want of a seat. */
export interface SeatState {
  total: number;
  used: number;
  free: number;
  waiting: number;
}

/**
 * The seats that count: every active licence that states a user limit (`maxAssignments` > 0),
 * summed. Add-ons (channels, AI credits, managed devices) state none and are left out. Undefined
 * when no licence states a user limit: seats cannot be checked.
 */
export function seatsOf(licences: readonly LicenceSeats[]): Omit<SeatState, 'waiting'> | undefined {
  const counting = licences.filter((l) => l.active && l.maxAssignments !== undefined && l.maxAssignments > 0);
  if (counting.length === 0) return undefined;
  let total = 0;
  let used = 0;
  let free = 0;
  for (const l of counting) {
    const max = l.maxAssignments ?? 0;
    total += max;
    used += l.assignedUsers;
    free += Math.max(0, max - l.assignedUsers);
  }
  return { total, used, free };
}

/**
 * Keeps as many creates as there are free seats, in the plan's order, and turns the rest into
 * skipped items (`no-free-seat`). A reactivation in the same plan takes a seat too (an active user
 * holds one), so reactivations are counted first and are never held here. Deactivations are not
 * counted in advance: the seats they free are used by a later cycle, which plans the waiting creates
 * again by itself.
 */
export function applySeats(plan: Plan, seats: Omit<SeatState, 'waiting'>): Plan {
  const reactivations = plan.operations.filter((op) => op.kind === 'reactivateUser').length;
  let room = Math.max(0, seats.free - reactivations);
  const waiting: CreateUserOperation[] = [];
  const operations = plan.operations.filter((op) => {
    if (op.kind !== 'createUser') return true;
    if (room > 0) {
      room--;
      return true;
    }
    waiting.push(op);
    return false;
  });
  const state: SeatState = { ...seats, waiting: waiting.length };
  if (waiting.length === 0) return { ...plan, seats: state };
  const skipped: SkippedItem[] = waiting.map((op) => ({
    sourceId: op.sourceId,
    email: op.email,
    reason: 'no-free-seat',
    message: `not created yet: the licence has no free seat (${seats.used} of ${seats.total} seats used); created by a later cycle once a seat is free`,
  }));
  const created = plan.summary.operations.createUser - waiting.length;
  return {
    ...plan,
    operations,
    skipped: [...plan.skipped, ...skipped],
    notices: [
      ...plan.notices,
      `${waiting.length} ${waiting.length === 1 ? 'create waits' : 'creates wait'} for a free seat: the licence has ${seats.free} free of ${seats.total} (${seats.used} used)` +
        `${reactivations > 0 ? `, ${reactivations} taken by reactivations` : ''}; ${created} ${created === 1 ? 'is' : 'are'} created this cycle, the rest once seats free up.`,
    ],
    summary: {
      ...plan.summary,
      operations: { ...plan.summary.operations, createUser: created },
      skipped: { ...plan.summary.skipped, 'no-free-seat': (plan.summary.skipped['no-free-seat'] ?? 0) + waiting.length },
    },
    seats: state,
  };
}
