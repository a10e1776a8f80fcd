/**
 * Spawning test children and killing them for real (SIGKILL), collecting the whole lines they wrote first; running
 * them until they exit by themselves (runNode), or leaving them running while a test acts (startNode).
 */
import { spawn, type ChildProcess } from 'node:child_process';

export interface KilledChild {
  lines: string[];
  stderr: string;
  signal: NodeJS.Signals | null;
  code: number | null;
}

export interface KillPlan {
  /** Kill this many ms after the first byte of output (or after spawn, if `fromSpawn`). */
  afterMs?: number;
  fromSpawn?: boolean;
  /** Kill once this many lines matching `countLinesStarting` arrived. */
  afterLines?: number;
  countLinesStarting?: string;
}

/** Runs `node script ...args`, kills it with SIGKILL per `plan`, resolves with the complete lines it wrote. */
export function runAndKill(script: string, args: string[], plan: KillPlan, env?: NodeJS.ProcessEnv): Promise<KilledChild> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(process.execPath, [script, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    let out = '';
    let err = '';
    let counted = 0;
    let timer: NodeJS.Timeout | undefined;
    const kill = (): void => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    };
    if (plan.fromSpawn && plan.afterMs !== undefined) timer = setTimeout(kill, plan.afterMs);
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      if (!plan.fromSpawn && plan.afterMs !== undefined && !timer) timer = setTimeout(kill, plan.afterMs);
      out += chunk;
      if (plan.afterLines !== undefined) {
        const prefix = plan.countLinesStarting ?? '';
        for (const line of chunk.split('\n')) if (line.startsWith(prefix) && line.length > prefix.length) counted++;
        if (counted >= plan.afterLines) kill();
      }
    });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (c: string) => (err += c));
    // A safety net, not a timing assumption: a child that never produces output is killed after 30 s.
    const guard = setTimeout(kill, 30_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(guard);
      const lines = out.split('\n');
      lines.pop(); // the last piece is incomplete (or empty)
      resolve({ lines, stderr: err, signal, code });
    });
  });
}

export interface ExitedChild {
  lines: string[];
  stderr: string;
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * Runs `node ...args` until it exits by itself and resolves with its complete lines. A safety net, not a timing
 * assumption: a child still running after `guardMs` is killed and the promise rejects, naming what it printed.
 */
export function runNode(args: string[], opts: { cwd?: string; guardMs?: number } = {}): Promise<ExitedChild> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: opts.cwd });
    let out = '';
    let err = '';
    let guarded = false;
    child.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
    const guard = setTimeout(() => {
      guarded = true;
      child.kill('SIGKILL');
    }, opts.guardMs ?? 20_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(guard);
      const lines = out.split('\n');
      lines.pop();
      if (guarded) reject(new Error(`node ${args.join(' ')} did not exit by itself; it printed ${JSON.stringify(lines)}, stderr ${JSON.stringify(err)}`));
      else resolve({ lines, stderr: err, code, signal });
    });
  });
}

export interface RunningChild {
  /** Resolves with the first whole line starting with `prefix`; rejects if the child exits first. */
  line(prefix: string): Promise<string>;
  /** SIGKILLs the child (if it still runs) and resolves once it has exited. */
  kill(): Promise<void>;
}

/** Starts `node script ...args` and leaves it running; kill() it (e.g. in t.after). */
export function startNode(script: string, args: string[]): RunningChild {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
  return {
    line: (prefix) => new Promise((resolve, reject) => {
      const check = (): boolean => {
        const found = out.split('\n').slice(0, -1).find((l) => l.startsWith(prefix));
        if (found === undefined) return false;
        resolve(found);
        return true;
      };
      if (check()) return;
      const onData = (): void => void (check() && child.stdout!.off('data', onData));
      child.stdout!.on('data', onData);
      void exited.then(() => reject(new Error(`child exited before printing '${prefix}'; stderr: ${err}`)));
    }),
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      return exited;
    },
  };
}

/** A small deterministic PRNG (mulberry32) so failing runs can be replayed from their seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
