import type { SourceStateStore } from '../connectors/source.js';

/** A connector's state kept in memory: for `tvsync plan` without Redis, checks and tests. */
export class MemoryStateStore implements SourceStateStore {
  private readonly values = new Map<string, string>();
  async get(key: string): Promise<string | undefined> {
    return this.values.get(key);
  }
  async set(key: string, value: string): Promise<void> {
    this.values.set(key, value);
  }
  async delete(key: string): Promise<void> {
    this.values.delete(key);
  }
}
