/**
 * lib/queue/remote/server.ts and client.ts in one process (the two-process tests are in
 * spec/durability/remote-processes.spec.ts): handshake, error replies with their codes, notes, bounds, bad peers,
 * permissions, close and reconnect.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { SpoolError } from '../../../lib/errors.js';
import { takeOwnerLock } from '../../../lib/log/owner-lock.js';
import { prepareSocketPath } from '../../../lib/queue/remote/address.js';
import { RemoteClient, type RemoteClientOptions } from '../../../lib/queue/remote/client.js';
import { encodeFrame, FrameDecoder } from '../../../lib/queue/remote/frame.js';
import { RemoteServer, type RemoteServerOptions, type RequestHandler } from '../../../lib/queue/remote/server.js';
import { tempDir } from '../../helpers/tmp.js';

const double: RequestHandler = ({ requests }) => requests.map((r) => (r as number) * 2);

async function serve(t: TestContext, opts: Partial<RemoteServerOptions> = {}): Promise<{ server: RemoteServer; dir: string }> {
  const dir = tempDir(t);
  const server = await RemoteServer.listen({ address: prepareSocketPath(dir, 1), queue: 'q', epoch: 1, handle: double, ...opts });
  t.after(() => server.close(100));
  return { server, dir };
}

async function connect(t: TestContext, server: RemoteServer, opts: Partial<RemoteClientOptions> = {}): Promise<RemoteClient> {
  const client = await RemoteClient.connect({ address: server.address, queue: 'q', epoch: 1, ...opts });
  t.after(() => client.close());
  return client;
}

/** A raw connection: sends `bytes`, and resolves with every message the server sent until it closed. */
function raw(address: string, bytes: Buffer[]): Promise<unknown[][]> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(address);
    const decoder = new FrameDecoder();
    const got: unknown[][] = [];
    socket.on('connect', () => {
      for (const b of bytes) socket.write(b);
    });
    socket.on('data', (chunk) => decoder.push(chunk, (p) => got.push(JSON.parse(p.toString()) as unknown[])));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(got));
    setTimeout(() => reject(new Error(`the server did not close the connection; it sent ${JSON.stringify(got)}`)), 20_000).unref();
  });
}

const hello = (over: Partial<{ version: number; queue: string; epoch: number }> = {}): Buffer =>
  encodeFrame(JSON.stringify([0, over.version ?? 1, over.queue ?? 'q', over.epoch ?? 1, 'raw-client', process.pid]));

function lengthOnly(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n, 0);
  return b;
}

describe('owner socket: handshake', () => {
  for (const [what, over, code] of [
    ['another queue', { queue: 'other' }, 'ERR_WRONG_QUEUE'],
    ['another epoch', { epoch: 2 }, 'ERR_EPOCH_MISMATCH'],
  ] as const) {
    it(`refuses a client that expects ${what} with ${code}`, async (t) => {
      const { server } = await serve(t);
      await assert.rejects(RemoteClient.connect({ address: server.address, queue: 'q', epoch: 1, ...over }), (err: unknown) =>
        err instanceof SpoolError && err.code === code);
      assert.equal(server.connections.size, 0);
    });
  }

  it('refuses a HELLO of another protocol version with ERR_UNSUPPORTED_VERSION, and ends the connection', async (t) => {
    const { server } = await serve(t);
    const got = await raw(server.address, [hello({ version: 99 })]);
    assert.equal(got.length, 1);
    assert.equal(got[0]![0], 2);
    assert.equal((got[0]![1] as { code: string }).code, 'ERR_UNSUPPORTED_VERSION');
  });

  it('welcomes a matching client with the epoch and its pid', async (t) => {
    const { server } = await serve(t);
    const client = await connect(t, server);
    assert.deepEqual(client.owner, { address: server.address, epoch: 1, pid: process.pid });
    assert.equal([...server.connections][0]!.clientId, client.clientId);
    assert.equal([...server.connections][0]!.pid, process.pid);
  });
});

describe('owner socket: requests and replies', () => {
  it('gives back an error reply as a SpoolError with its code, and only for that request', async (t) => {
    const { server } = await serve(t, {
      handle: ({ requests }) => requests.map((r) => {
        if (r === 'bad') throw new SpoolError('ERR_INVALID_ARG', 'bad input');
        if (r === 'busy') return Promise.reject(new SpoolError('ERR_JOB_ACTIVE', 'job 7 is active'));
        if (r === 'type') return Promise.reject(new TypeError('not a string'));
        return r;
      }),
    });
    // 'bad' makes the handler throw while it maps its batch: every request of that batch fails with what it threw.
    const client = await connect(t, server);
    const batch = [client.request('ok'), client.request('bad')];
    for (const p of batch) await assert.rejects(p, (err: unknown) => err instanceof SpoolError && err.code === 'ERR_INVALID_ARG' && err.message === 'bad input');
    const [busy, type, ok] = await Promise.allSettled([client.request('busy'), client.request('type'), client.request('fine')]);
    assert.equal(busy.status, 'rejected');
    assert.ok((busy as PromiseRejectedResult).reason instanceof SpoolError);
    assert.equal((busy as PromiseRejectedResult).reason.code, 'ERR_JOB_ACTIVE');
    assert.ok((type as PromiseRejectedResult).reason instanceof TypeError);
    assert.deepEqual(ok, { status: 'fulfilled', value: 'fine' });
  });

  it('fails only the reply JSON cannot encode (ERR_INVALID_ARG), and only the request over the frame limit (ERR_TOO_LARGE)', async (t) => {
    const { server } = await serve(t, { handle: ({ requests }) => requests.map((r) => (r === 'big' ? 1n : r)) });
    const client = await connect(t, server, { maxFrameBytes: 10_000 });
    const [a, b, c, d] = await Promise.allSettled([
      client.request('x'), client.request('big'), client.request('y'.repeat(20_000)), client.request('z'),
    ]);
    assert.deepEqual(a, { status: 'fulfilled', value: 'x' });
    assert.equal((b as PromiseRejectedResult).reason.code, 'ERR_INVALID_ARG');
    assert.equal((c as PromiseRejectedResult).reason.code, 'ERR_TOO_LARGE');
    assert.deepEqual(d, { status: 'fulfilled', value: 'z' });
  });

  it('pushes notes to the client in the order sent, between replies', async (t) => {
    const notes: unknown[] = [];
    const { server } = await serve(t, {
      onConnection: (conn) => conn.notify('hello'),
      handle: ({ connection, requests }) => requests.map((r) => {
        connection.notify({ before: r });
        return r;
      }),
    });
    const client = await connect(t, server, { onNotify: (m) => notes.push(m) });
    const seen: unknown[] = [];
    await Promise.all([1, 2].map((n) => client.request(n).then((v) => seen.push(['reply', v, notes.length]))));
    assert.deepEqual(notes, ['hello', { before: 1 }, { before: 2 }]);
    // Both notes of the batch were pushed before either reply, so both arrived before the replies settled.
    assert.deepEqual(seen, [['reply', 1, 3], ['reply', 2, 3]]);
  });

  it('fails the batch of a handler that returns no array, and keeps the connection', async (t) => {
    const { server } = await serve(t, { handle: ({ requests }) => (requests[0] === 'odd' ? (undefined as unknown as unknown[]) : requests) });
    const client = await connect(t, server);
    await assert.rejects(client.request('odd'), TypeError);
    assert.equal(await client.request('fine'), 'fine');
  });

  it('numbers requests 1, 2, … per client and hands the handler the key parts', async (t) => {
    const keys: string[] = [];
    const { server } = await serve(t, {
      handle: ({ connection, seqs, requests }) => {
        for (const s of seqs) keys.push(`${connection.clientId}:${s}`);
        return requests;
      },
    });
    const client = await connect(t, server, { clientId: 'client-a' });
    await Promise.all([client.request(1), client.request(2)]);
    await client.request(3);
    assert.deepEqual(keys, ['client-a:1', 'client-a:2', 'client-a:3']);
  });
});

describe('owner socket: bounds', () => {
  it('fails a request with no reply within requestTimeoutMs with ERR_TIMEOUT, and drops the late reply', async (t) => {
    let release: () => void = () => undefined;
    const late = new Promise<void>((r) => (release = r));
    const { server } = await serve(t, { handle: ({ requests }) => requests.map((r) => (r === 'slow' ? late.then(() => 'late') : r)) });
    let now = 0;
    const client = await connect(t, server, { requestTimeoutMs: 1_000, now: () => now });
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const slow = client.request('slow');
    now = 999;
    t.mock.timers.tick(999);
    assert.equal(await client.request('quick'), 'quick');
    now = 1_000;
    t.mock.timers.tick(1);
    await assert.rejects(slow, { code: 'ERR_TIMEOUT' });
    t.mock.timers.reset();
    release();
    assert.equal(await client.request('after'), 'after', 'the late reply to the forgotten request changes nothing');
    assert.equal(client.pendingCount, 0);
  });

  it('says which process holds the queue when nothing listens at its address (ERR_OWNER_UNREACHABLE)', async (t) => {
    const dir = tempDir(t);
    const release = await takeOwnerLock(dir, { onLost: () => undefined });
    t.after(() => release());
    const address = prepareSocketPath(dir, 1);
    await assert.rejects(RemoteClient.connect({ address, queue: 'q', epoch: 1, queueDir: dir }), (err: unknown) =>
      err instanceof SpoolError && err.code === 'ERR_OWNER_UNREACHABLE' && err.message.includes(`pid ${process.pid} holds its lock`));
  });

  it('gives up on an owner that accepts but never answers the HELLO, within connectTimeoutMs', async (t) => {
    const dir = tempDir(t);
    const address = prepareSocketPath(dir, 1);
    const silent = net.createServer(() => undefined).listen(address);
    await new Promise((r) => silent.once('listening', r));
    t.after(() => {
      silent.close();
      for (const s of [] as net.Socket[]) s.destroy();
    });
    silent.on('connection', (s) => t.after(() => s.destroy()));
    await assert.rejects(RemoteClient.connect({ address, queue: 'q', epoch: 1, connectTimeoutMs: 100 }), (err: unknown) =>
      err instanceof SpoolError && err.code === 'ERR_OWNER_UNREACHABLE' && /did not answer within 100 ms/.test(err.message));
  });

  it('drops a connection that sends no HELLO within helloTimeoutMs', async (t) => {
    const { server } = await serve(t, { helloTimeoutMs: 50 });
    assert.deepEqual(await raw(server.address, []), []);
  });
});

describe('owner socket: bad peers', () => {
  const cases: Array<[string, Buffer[]]> = [
    ['a length over the limit before the HELLO', [lengthOnly(0xffff_ffff)]],
    ['a first frame that is not JSON', [encodeFrame('{not json')]],
    ['a first message that is not a HELLO', [encodeFrame('[3,[1,2]]')]],
    ['a HELLO with mistyped fields', [encodeFrame('[0,"1","q",1,"c",1]')]],
    ['a length over the limit after the HELLO', [hello(), lengthOnly(0x7fff_ffff), Buffer.alloc(64)]],
    ['requests with a bad seq', [hello(), encodeFrame('[3,[0,"x"]]')]],
    ['requests that are not pairs', [hello(), encodeFrame('[3,[1]]')]],
    ['a second HELLO', [hello(), hello()]],
    ['random bytes after the HELLO', [hello(), Buffer.from([1, 0, 0, 0, 0xff, 7, 0, 0, 0, 0x80, 0x81])]],
  ];
  for (const [what, bytes] of cases) {
    it(`refuses ${what} with ERR_PROTOCOL, closes that connection alone, and serves the others`, async (t) => {
      const { server } = await serve(t);
      const client = await connect(t, server);
      assert.equal(await client.request(1), 2);
      const got = await raw(server.address, bytes);
      const refused = got.find((m) => m[0] === 2);
      assert.ok(refused, `no REFUSED among ${JSON.stringify(got)}`);
      assert.equal((refused[1] as { code: string }).code, 'ERR_PROTOCOL');
      assert.deepEqual(await Promise.all([client.request(2), client.request(3)]), [4, 6]);
      assert.equal(server.connections.size, 1);
    });
  }
});

describe('owner socket: permissions', () => {
  it('listens under the temp dir for a queue whose socket path would pass the OS limit, and a client reaches it', async (t) => {
    let dir = tempDir(t);
    while (Buffer.byteLength(dir) < 120) dir = path.join(dir, 'a-rather-long-directory-name');
    fs.mkdirSync(dir, { recursive: true });
    const server = await RemoteServer.listenFor(dir, { queue: 'q', epoch: 4, handle: double });
    t.after(() => server.close(100));
    assert.ok(!server.address.startsWith(dir), server.address);
    assert.ok(Buffer.byteLength(server.address) <= 107);
    assert.equal(fs.statSync(server.address).mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.dirname(server.address)).mode & 0o777, 0o700);
    const client = await RemoteClient.connect({ address: server.address, queue: 'q', epoch: 4 });
    assert.equal(await client.request(5), 10);
    await client.close();
    await server.close();
    assert.equal(fs.existsSync(path.dirname(server.address)), false, 'the temp socket directory goes with the server');
  });

  it('makes the socket file 0600 in a 0700 directory', async (t) => {
    const { server } = await serve(t);
    assert.equal(fs.statSync(server.address).mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.dirname(server.address)).mode & 0o777, 0o700);
  });

  it('refuses to listen in a directory others may enter (ERR_INVALID_ARG), before any socket exists', async (t) => {
    const dir = tempDir(t);
    fs.chmodSync(dir, 0o755);
    const address = path.join(dir, 'owner-1.sock');
    await assert.rejects(RemoteServer.listen({ address, queue: 'q', epoch: 1, handle: double }), { code: 'ERR_INVALID_ARG' });
    assert.equal(fs.existsSync(address), false);
  });

  const root = process.getuid?.() === 0;
  // As root we can act as another user (nobody, 65534) for real; as anyone else we cannot, and test the modes only.
  it('keeps another user out: by the socket mode, and by the directory mode', { skip: !root && 'not root: cannot connect as another user' }, async (t) => {
    const { server, dir } = await serve(t);
    const tryAsNobody = (): Promise<string> => new Promise((resolve, reject) => {
      const code = `const s = require('node:net').connect(${JSON.stringify(server.address)});
        s.on('connect', () => { console.log('connected'); s.destroy(); }); s.on('error', (e) => console.log(e.code));`;
      const child = spawn(process.execPath, ['-e', code], { uid: 65534, gid: 65534, stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (c) => (out += c));
      child.on('error', reject);
      child.on('close', () => resolve(out.trim()));
    });
    // Open every directory on the way, so the socket's own 0600 is all that stands between nobody and the owner.
    const opened: string[] = [];
    for (let d = path.dirname(server.address); d !== path.dirname(d); d = path.dirname(d)) {
      const mode = fs.statSync(d).mode & 0o777;
      if ((mode & 0o001) === 0) {
        fs.chmodSync(d, mode | 0o011);
        opened.push(d); // all inside the test's temp dir, which is removed after
      }
      if (d === dir) break;
    }
    assert.equal(await tryAsNobody(), 'EACCES');
    // And the directory alone: a socket opened to everyone is still out of reach behind the 0700 directory.
    for (const d of opened) fs.chmodSync(d, fs.statSync(d).mode & 0o700);
    fs.chmodSync(server.address, 0o666);
    assert.equal(await tryAsNobody(), 'EACCES');
    // The control: with both open, nobody connects, so the two refusals above were the modes at work.
    for (const d of opened) fs.chmodSync(d, (fs.statSync(d).mode & 0o700) | 0o011);
    assert.equal(await tryAsNobody(), 'connected');
  });
});

describe('owner socket: close and loss', () => {
  it('closes a client gracefully: waits for pending replies, then refuses new requests with ERR_CLOSED', async (t) => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const { server } = await serve(t, { handle: ({ requests }) => requests.map((r) => gate.then(() => r)) });
    const client = await connect(t, server);
    const pending = client.request('a');
    const closed = client.close();
    await assert.rejects(client.request('b'), { code: 'ERR_CLOSED' });
    release();
    assert.equal(await pending, 'a');
    await closed;
    assert.equal(client.pendingCount, 0);
  });

  it('closes a server gracefully: replies still owed are written before the connections end, and the socket is removed', async (t) => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    let received = 0;
    const { server } = await serve(t, {
      handle: ({ requests }) => {
        received += requests.length;
        return requests.map((r) => gate.then(() => r));
      },
    });
    const client = await connect(t, server);
    const owed = client.request('owed');
    while (received === 0) await new Promise((r) => setImmediate(r));
    const closing = server.close(20_000);
    await new Promise((r) => setImmediate(r));
    release();
    assert.equal(await owed, 'owed');
    await closing;
    assert.equal(fs.existsSync(server.address), false);
  });

  it('fails pending requests with ERR_OWNER_UNREACHABLE when the connection is lost and there is no reconnect', async (t) => {
    const { server } = await serve(t, { handle: ({ requests }) => requests.map(() => new Promise(() => undefined)) });
    const client = await connect(t, server);
    const p = client.request('never');
    while (server.connections.size === 0 || client.pendingCount === 0) await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    for (const c of server.connections) c.close();
    await assert.rejects(p, { code: 'ERR_OWNER_UNREACHABLE' });
    await assert.rejects(client.request('later'), { code: 'ERR_OWNER_UNREACHABLE' });
  });

  it('re-sends unanswered requests in order after a dropped connection; the handler sees their keys again', async (t) => {
    const seen: string[] = [];
    let hold = true;
    const { server } = await serve(t, {
      handle: ({ connection, seqs, requests }) => {
        for (const s of seqs) seen.push(`${connection.clientId}:${s}`);
        return requests.map((r) => (hold ? new Promise(() => undefined) : r));
      },
    });
    const reconnects: Error[] = [];
    const client = await connect(t, server, {
      clientId: 'c',
      reconnect: async (cause) => {
        reconnects.push(cause);
        hold = false;
        return { address: server.address, epoch: 1 };
      },
    });
    const first = [client.request('a'), client.request('b')];
    while (seen.length < 2) await new Promise((r) => setImmediate(r));
    for (const c of server.connections) c.close();
    const third = client.request('c'); // made while the client reconnects: goes after the re-sent ones
    assert.deepEqual(await Promise.all([...first, third]), ['a', 'b', 'c']);
    assert.equal(reconnects.length, 1);
    assert.deepEqual(seen, ['c:1', 'c:2', 'c:1', 'c:2', 'c:3']);
  });

  it('gives up after maxReconnects failed attempts with the last error, and tries again on the next request', async (t) => {
    let hold = true;
    const { server } = await serve(t, { handle: ({ requests }) => requests.map((r) => (hold ? new Promise(() => undefined) : (r as number) * 2)) });
    const dead = path.join(path.dirname(server.address), 'owner-9.sock');
    let attempts = 0;
    let target = { address: dead, epoch: 9 };
    const client = await connect(t, server, { maxReconnects: 3, reconnect: async () => (attempts++, target) });
    const stuck = client.request(1);
    while (server.connections.size === 0) await new Promise((r) => setImmediate(r));
    for (const c of server.connections) c.close();
    await assert.rejects(stuck, (err: unknown) => err instanceof SpoolError && err.code === 'ERR_OWNER_UNREACHABLE' && err.message.includes('owner-9.sock'));
    assert.equal(attempts, 3);
    hold = false;
    target = { address: server.address, epoch: 1 };
    assert.equal(await client.request(21), 42);
    assert.equal(attempts, 4);
  });

  it('ends every connection on close, also one whose request it had not read yet', async (t) => {
    const { server } = await serve(t, { handle: ({ requests }) => requests.map(() => new Promise(() => undefined)) });
    const client = await connect(t, server);
    const unread = client.request('x');
    const closing = server.close(20_000);
    await assert.rejects(unread, { code: 'ERR_OWNER_UNREACHABLE' });
    await closing;
    assert.equal(fs.existsSync(server.address), false);
  });
});
