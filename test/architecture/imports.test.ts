import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/**
 * The shape of the house, checked on every `npm test`: no import loop between the folders under
 * src/, and the pure core (plan/, model/) imports nothing from the edges. Every import counts:
 * static, type-only, re-exports and `import('…')` with a literal path.
 */

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/** What the pure core may import: plan/ reads model/; model/ reads only itself. No package, no node: module. */
const PURE_CORE: Record<string, readonly string[]> = { plan: ['plan', 'model'], model: ['model'] };

/** observe/ reports on the core's records: it reads model/, plan/ and the shared mechanics of net/, never the runtime or a store. */
const OBSERVE_READS: readonly string[] = ['observe', 'model', 'plan', 'net'];

interface Import {
  file: string; // relative to src/, with forward slashes
  specifier: string;
  target: string | undefined; // relative to src/ when the specifier is a relative path
}

/** Every import of a TypeScript source: static, type-only, re-exports and dynamic with a literal (not those in comments or strings). */
function importSpecifiers(text: string): string[] {
  return ts.preProcessFile(text, true, true).importedFiles.map((f) => f.fileName);
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

function toPosix(path: string): string {
  return path.split(sep).join('/');
}

function readImports(): Import[] {
  return sourceFiles(SRC).flatMap((path) => {
    const file = toPosix(relative(SRC, path));
    return importSpecifiers(readFileSync(path, 'utf8')).map((specifier) => ({
      file,
      specifier,
      target: specifier.startsWith('.') ? toPosix(relative(SRC, resolve(dirname(path), specifier))) : undefined,
    }));
  });
}

/** The folder a path under src/ belongs to: its first segment ('..' for anything outside src/). */
function folderOf(path: string): string {
  const first = path.split('/')[0]!;
  return first.startsWith('..') ? '..' : path.includes('/') ? first : '.';
}

/** Folder → folders it imports, with one file-level example per edge for the failure message. */
function folderGraph(imports: Import[]): Map<string, Map<string, string>> {
  const graph = new Map<string, Map<string, string>>();
  for (const { file, target } of imports) {
    if (target === undefined) continue;
    const from = folderOf(file);
    const to = folderOf(target);
    if (from === to) continue;
    const edges = graph.get(from) ?? new Map<string, string>();
    if (!edges.has(to)) edges.set(to, `${file} → ${target}`);
    graph.set(from, edges);
  }
  return graph;
}

/** The strongly connected components with more than one folder: each is an import loop. */
function loops(graph: Map<string, Iterable<string>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  let next = 0;
  const visit = (node: string) => {
    index.set(node, next);
    low.set(node, next);
    next++;
    stack.push(node);
    onStack.add(node);
    for (const to of graph.get(node) ?? []) {
      if (!index.has(to)) {
        visit(to);
        low.set(node, Math.min(low.get(node)!, low.get(to)!));
      } else if (onStack.has(to)) {
        low.set(node, Math.min(low.get(node)!, index.get(to)!));
      }
    }
    if (low.get(node) === index.get(node)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1) found.push(component.sort());
    }
  };
  for (const node of graph.keys()) if (!index.has(node)) visit(node);
  return found;
}

function withoutEdges(graph: Map<string, Map<string, string>>, skipped: readonly string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [from, edges] of graph)
    out.set(
      from,
      [...edges.keys()].filter((to) => !skipped.includes(`${from} -> ${to}`)),
    );
  return out;
}

describe('the import checker', () => {
  it('reads static, type-only, re-exported and literal dynamic imports, not those in comments or strings', () => {
    const text = [
      "import type { A } from '../model/a.js';",
      'import {',
      '  B,',
      "} from './b.js';",
      "export * from '../plan/c.js';",
      "const d = await import('../runtime/d.js');",
      "// import '../store/commented.js';",
      'const s = "import x from \'../store/quoted.js\'";',
      "import pino from 'pino';",
    ].join('\n');
    expect(importSpecifiers(text)).toEqual(['../model/a.js', './b.js', '../plan/c.js', '../runtime/d.js', 'pino']);
  });

  it('finds a loop through several folders and none in a layered graph', () => {
    const graph = new Map([
      ['cli', ['runtime']],
      ['runtime', ['store', 'plan']],
      ['store', ['observe']],
      ['observe', ['runtime', 'model']],
      ['plan', ['model']],
    ]);
    expect(loops(graph)).toEqual([['observe', 'runtime', 'store']]);
    graph.set('observe', ['model']);
    expect(loops(graph)).toEqual([]);
  });

  it('names the folder of a path under src/', () => {
    expect(folderOf('plan/diff.ts')).toBe('plan');
    expect(folderOf('cli/commands/run.ts')).toBe('cli');
    expect(folderOf('../package.json')).toBe('..');
  });
});

describe('the folders under src/', () => {
  const imports = readImports();
  const graph = folderGraph(imports);

  it('are read: every folder is found, with the imports between them', () => {
    expect([...graph.keys()]).toEqual(expect.arrayContaining(['cli', 'runtime', 'plan']));
    expect(graph.get('runtime')?.has('plan')).toBe(true);
  });

  it('import each other without a loop', () => {
    const found = loops(withoutEdges(graph, [])).map((component) => {
      const edges = component.flatMap((from) =>
        [...(graph.get(from) ?? [])].filter(([to]) => component.includes(to)).map(([to, example]) => `${from} -> ${to} (${example})`),
      );
      return `${component.join(' / ')}: ${edges.join('; ')}`;
    });
    expect(found, 'folders that import each other, directly or round about').toEqual([]);
  });

  it('plan/ and model/ import nothing from the edges: plan/ only plan/ and model/, model/ only model/', () => {
    const wrong = imports
      .filter(({ file }) => folderOf(file) in PURE_CORE)
      .filter(({ file, target }) => target === undefined || !PURE_CORE[folderOf(file)]!.includes(folderOf(target)))
      .map(({ file, specifier }) => `${file} imports ${specifier}`);
    expect(wrong).toEqual([]);
  });

  it('observe/ imports only model/, plan/ and net/ of the house', () => {
    const wrong = imports
      .filter(({ file, target }) => folderOf(file) === 'observe' && target !== undefined && !OBSERVE_READS.includes(folderOf(target)))
      .map(({ file, specifier }) => `${file} imports ${specifier}`);
    expect(wrong).toEqual([]);
  });
});
