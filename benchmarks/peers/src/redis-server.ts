/**
 * A private redis-server for one BullMQ child: started on 127.0.0.1 and a free port, with its data dir in a fresh
 * temp dir, AOF on with the pairing's appendfsync, RDB snapshots off, and stopped by its pid (SIGTERM, then SIGKILL
 * after 5 s). The binary is `redis-server` on PATH, or $REDIS_SERVER. Debian: `apt-get install -y redis-server`.
 *
 * Free port: bind a TCP server to port 0 on 127.0.0.1, read the port, close it, give it to redis (redis has no
 * port 0). Another process could take it in between; a start that fails is retried on a new port.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { makeTempDir, removeTempDir, track } from './processes.js';

export const REDIS_BIN = process.env.REDIS_SERVER ?? 'redis-server';

/** `redis-server --version`'s first line, or undefined when it cannot be run (not installed). */
export function redisServerVersion(): string | undefined {
  const r = spawnSync(REDIS_BIN, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  if (r.error || r.status !== 0) return undefined;
  return r.stdout.trim().split('\n')[0];
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once the server answers PING with +PONG, or rejects after `ms`. */
async function waitForPong(port: number, ms: number, exited: () => boolean): Promise<void> {
  const deadline = performance.now() + ms;
  while (performance.now() < deadline) {
    if (exited()) throw new Error('redis-server exited during start');
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.setTimeout(500);
      socket.once('connect', () => socket.write('PING\r\n'));
      socket.once('data', (d) => {
        socket.destroy();
        resolve(d.toString().startsWith('+PONG'));
      });
      socket.once('error', () => resolve(false));
      socket.once('timeout', () => {
        socket.destroy();
        resolve(false);
      });
    });
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`redis-server did not answer PING within ${ms} ms`);
}

export interface RedisServer {
  port: number;
  pid: number;
  /** SIGTERM, then SIGKILL after 5 s; removes the data dir. Safe to call twice. */
  stop(): Promise<void>;
}

export async function startRedis(appendfsync: 'always' | 'everysec'): Promise<RedisServer> {
  let lastError: Error | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    const dir = makeTempDir('redis');
    const port = await freePort();
    const log = path.join(dir, 'redis.log');
    const args = [
      '--port', String(port),
      '--bind', '127.0.0.1',
      '--protected-mode', 'yes',
      '--daemonize', 'no',
      '--dir', dir,
      '--logfile', log,
      '--save', '',
      '--appendonly', 'yes',
      '--appendfsync', appendfsync,
      '--maxmemory-policy', 'noeviction',
    ];
    const child: ChildProcess = spawn(REDIS_BIN, args, { stdio: 'ignore' });
    track(child);
    let exited = false;
    const exit = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.once('exit', () => (exited = true));
    child.once('error', (err) => (lastError = err));
    const stop = async (): Promise<void> => {
      if (!exited) {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exit;
        clearTimeout(killer);
      }
      removeTempDir(dir);
    };
    try {
      await waitForPong(port, 5_000, () => exited);
      return { port, pid: child.pid!, stop };
    } catch (err) {
      const tail = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trim().split('\n').slice(-3).join(' | ') : '';
      lastError = new Error(`${(err as Error).message}${tail ? `; log: ${tail}` : ''}`);
      await stop();
    }
  }
  throw lastError ?? new Error('redis-server did not start');
}
