import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { TeamViewerEmulator } from '../src/emulator/server.js';
import { BENCH_TOKEN } from './emulator-process.js';

/**
 * `count` TeamViewer companies, one emulator each, in a process of their own: an MSP's tenants,
 * whose memory and CPU are not the daemon's. Prints their SCIM base URLs as one JSON line.
 */
export async function startEmulatorFleet(count: number): Promise<{ baseUrls: string[]; stop(): Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), String(count)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const baseUrls = await new Promise<string[]>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.startsWith('['));
      if (line && out.includes('\n', out.indexOf(line))) resolve(JSON.parse(line) as string[]);
    });
    child.once('exit', (code) => reject(new Error(`the emulator fleet exited with ${code}`)));
  });
  return {
    baseUrls,
    stop: async () => {
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const count = Number(process.argv[2]);
  const emulators: TeamViewerEmulator[] = [];
  const baseUrls: string[] = [];
  for (let i = 0; i < count; i++) {
    const emulator = new TeamViewerEmulator({ tokens: [BENCH_TOKEN], owner: { email: 'owner@bench.example', name: 'Owner' } });
    baseUrls.push((await emulator.start(0)).baseUrl);
    emulators.push(emulator);
  }
  process.stdout.write(`${JSON.stringify(baseUrls)}\n`);
  process.once('SIGTERM', () => {
    void Promise.all(emulators.map((e) => e.stop())).then(() => process.exit(0));
  });
}
