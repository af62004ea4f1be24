import { describe, expect, it } from 'vitest';
import { StringIndex } from '../../src/plan/string-index.js';

describe('StringIndex', () => {
  it('finds every key at its position and reports absent keys as -1', () => {
    const keys = Array.from({ length: 5000 }, (_, i) => `user${i}@corp.example`);
    const index = StringIndex.of(keys);
    for (let i = 0; i < keys.length; i += 97) expect(index.find(`user${i}@corp.example`)).toBe(i);
    expect(index.find('user5000@corp.example')).toBe(-1);
    expect(index.find('')).toBe(-1);
  });

  it('keeps the last position of a repeated key, as a Map would', () => {
    const keys = ['a', 'b', 'a', 'c', 'a'];
    expect(StringIndex.of(keys).find('a')).toBe(4);
  });

  it('tells the caller which position already holds a key, and keeps the first unless told to replace it', () => {
    const keys = ['x@a.test', 'y@a.test', 'x@a.test'];
    const index = new StringIndex(keys);
    expect(index.add(0)).toBe(-1);
    expect(index.add(1)).toBe(-1);
    expect(index.add(2)).toBe(0);
    expect(index.find('x@a.test')).toBe(0);
    expect(index.add(2, true)).toBe(0);
    expect(index.find('x@a.test')).toBe(2);
  });

  it('tells apart keys that differ only in case, Unicode form or length', () => {
    const keys = ['é@a.test', 'e\u0301@a.test', 'É@a.test', 'é@a.tes', ''];
    const index = StringIndex.of(keys);
    expect(keys.map((key) => index.find(key))).toEqual([0, 1, 2, 3, 4]);
  });
});
