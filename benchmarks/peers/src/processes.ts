/**
 * Every process and temp dir the runner starts, and the guarantee that none outlives it: children run under a
 * time limit and are killed (SIGKILL) past it; on exit, on SIGINT / SIGTERM / SIGHUP and on an uncaught error, all
 * live ones are killed by pid and the temp dirs removed. Owns nothing else; redis-server.ts registers its server
 * here.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const live = new Set<ChildProcess>();
const tempDirs = new Set<string>();

/** Tracks `child` until it exits; killed by pid if the runner ends first. */
export function track(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
}

export function makeTempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `spoolq-peers-${prefix}-`));
  tempDirs.add(dir);
  return dir;
}

export function removeTempDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

function killAll(): void {
  for (const child of live) {
    // The child may have exited between the set and here: kill() on a dead pid throws ESRCH, which is fine.
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
}

process.on('exit', killAll);
for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) {
  process.on(signal, () => {
    console.error(`\n${signal}: stopping ${live.size} child process(es) and removing temp dirs`);
    killAll();
    process.exit(code);
  });
}
process.on('uncaughtException', (err) => {
  console.error(err);
  killAll();
  process.exit(1);
});

export interface ChildOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  /** The last lines of stderr, for a failure message. */
  stderrTail: string;
  ms: number;
}

/** Runs `node <args>` with a time limit; stdout is passed through (indented), stderr kept for the outcome. */
export function runNode(args: string[], opts: { timeoutMs: number; cwd?: string }): Promise<ChildOutcome> {
  const t0 = performance.now();
  const child = spawn(process.execPath, args, { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  track(child);
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => process.stdout.write(chunk.toString().replace(/^(?=.)/gm, '      ')));
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, opts.timeoutMs);
  return new Promise((resolve) => {
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const stderrTail = stderr.trim().split('\n').slice(-6).join('\n');
      resolve({ code, signal, timedOut, stderrTail, ms: performance.now() - t0 });
    });
  });
}
