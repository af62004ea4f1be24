import type { TeamViewerPort } from '../teamviewer/port.js';

/** At most `limit` calls at once; the others wait their turn, first come first served. */
export class InFlightLimit {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly limit: number) {}

  async run<T>(call: () => Promise<T>): Promise<T> {
    if (this.active < this.limit) this.active++;
    // A finished call hands its place straight to the next in line.
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await call();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}

/**
 * The client with each TeamViewer call made within the limit. The operation workers keep more jobs
 * open than the target's concurrency, so one job's Redis bookkeeping overlaps another's request;
 * the limit keeps the requests in flight at the configured concurrency.
 */
export function withinLimit(client: TeamViewerPort, limit: InFlightLimit): TeamViewerPort {
  return {
    listUsers: (opts) => limit.run(() => client.listUsers(opts)),
    getUser: (id) => limit.run(() => client.getUser(id)),
    getTokenOwner: (opts) => limit.run(() => client.getTokenOwner(opts)),
    listGroups: (opts) => limit.run(() => client.listGroups(opts)),
    findUserByEmail: (email) => limit.run(() => client.findUserByEmail(email)),
    createUser: (user) => limit.run(() => client.createUser(user)),
    updateUser: (id, changes) => limit.run(() => client.updateUser(id, changes)),
    findGroupByName: (name) => limit.run(() => client.findGroupByName(name)),
    createGroup: (displayName, memberIds) => limit.run(() => client.createGroup(displayName, memberIds)),
    renameGroup: (id, displayName) => limit.run(() => client.renameGroup(id, displayName)),
    addGroupMembers: (id, memberIds) => limit.run(() => client.addGroupMembers(id, memberIds)),
    removeGroupMembers: (id, memberIds) => limit.run(() => client.removeGroupMembers(id, memberIds)),
    deleteGroup: (id) => limit.run(() => client.deleteGroup(id)),
  };
}
