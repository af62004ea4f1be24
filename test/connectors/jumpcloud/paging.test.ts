import { describe, expect, it } from 'vitest';
import { readAfter, type Page } from '../../../src/connectors/jumpcloud/client.js';
import { PAGE_SIZE } from '../../../src/connectors/jumpcloud/wire.js';
import { SourceReadError } from '../../../src/connectors/source.js';

/** A JumpCloud list of `total` records whose pages may come back shorter than they should. */
function list(total: number, sizeAt: (skip: number) => number = (skip) => Math.min(PAGE_SIZE, total - skip)) {
  return async (skip: number): Promise<Page> => ({ items: Array.from({ length: Math.max(0, sizeAt(skip)) }, (_, i) => ({ n: skip + i })), total });
}

const keepAll = (items: unknown[]) => items;

describe('JumpCloud paging takes no page on faith', () => {
  it('reads a list whose counts add up', async () => {
    const fetch = list(250);
    const { kept, drifted } = await readAfter(await fetch(0), fetch, keepAll, 'users', 100);
    expect(kept).toHaveLength(150);
    expect(drifted).toBe(false);
  });

  it('fails the read when a page before the end comes back short', async () => {
    const fetch = list(250, (skip) => (skip === 100 ? 40 : Math.min(PAGE_SIZE, 250 - skip)));
    await expect(readAfter(await fetch(0), fetch, keepAll, 'users', 100)).rejects.toThrow(SourceReadError);
    await expect(readAfter(await fetch(0), fetch, keepAll, 'users', 100)).rejects.toThrow(/190 records while it announced 250 \(page 2 held 40 of 100\)/);
  });

  it('fails the read when the first page is short while the total says more', async () => {
    const fetch = list(250, (skip) => (skip === 0 ? 60 : 0));
    await expect(readAfter(await fetch(0), fetch, keepAll, 'users', 100)).rejects.toThrow(/60 records while it announced 250/);
  });

  it('fails the read when the last pages are empty', async () => {
    const fetch = list(250, (skip) => (skip >= 200 ? 0 : PAGE_SIZE));
    await expect(readAfter(await fetch(0), fetch, keepAll, 'users', 100)).rejects.toThrow(/200 records while it announced 250/);
  });
});
