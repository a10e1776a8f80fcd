/**
 * The owner's socket between real processes (lib/queue/remote/): a server in a child process
 * (children/remote-server.ts), the client here. Pipelined requests all answered in order; a server killed -9 in
 * the middle of a batch, a new server in another child, and the unanswered requests sent again there, where the
 * request keys tell the repeats.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { prepareSocketPath } from '../../lib/queue/remote/address.js';
import { RemoteClient } from '../../lib/queue/remote/client.js';
import { startNode, type RunningChild } from '../helpers/child.js';
import { tempDir } from '../helpers/tmp.js';

const SERVER = fileURLToPath(new URL('./children/remote-server.js', import.meta.url));

function startServer(t: { after: (fn: () => unknown) => void }, address: string, epoch: number, applied: string, killAfter = 0): RunningChild {
  const child = startNode(SERVER, [address, 'q', String(epoch), applied, `${applied}.dup`, String(killAfter)]);
  t.after(() => child.kill());
  return child;
}

/** Every line of the applied file, as keys. */
function appliedKeys(file: string): string[] {
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => l.split(' ')[0]!);
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('owner socket between processes', () => {
  it('answers 10,000 pipelined requests from another process, all in order', async (t) => {
    const dir = tempDir(t);
    const applied = path.join(dir, 'applied');
    const address = prepareSocketPath(dir, 1);
    const server = startServer(t, address, 1, applied);
    await server.line('listening');
    const client = await RemoteClient.connect({ address, queue: 'q', epoch: 1 });
    const order: number[] = [];
    const wrong: Array<[number, unknown]> = [];
    const all: Array<Promise<void>> = [];
    for (let wave = 0; wave < 10; wave++) {
      for (let i = wave * 1_000 + 1; i <= (wave + 1) * 1_000; i++) {
        all.push(client.request({ n: i }).then((v) => {
          order.push(i);
          if (v !== i * 2) wrong.push([i, v]);
        }));
      }
      await turn(); // the next thousand go in another write, while these are on their way
    }
    await Promise.all(all);
    assert.deepEqual(wrong, []);
    assert.deepEqual(order, Array.from({ length: 10_000 }, (_, i) => i + 1));
    const keys = appliedKeys(applied);
    assert.equal(keys.length, 10_000);
    assert.equal(new Set(keys).size, 10_000);
    await client.close();
  });

  it('re-sends the unanswered requests to a new server after the first is killed -9 mid-batch; each is applied once', async (t) => {
    const dir = tempDir(t);
    const applied = path.join(dir, 'applied');
    const address1 = prepareSocketPath(dir, 1);
    // The first server applies 1,250 requests and dies inside the handler, halfway through the batch 1001..1500.
    const server1 = startServer(t, address1, 1, applied, 1_250);
    await server1.line('listening');
    let server2: RunningChild | undefined;
    const causes: Error[] = [];
    const address2 = prepareSocketPath(dir, 2);
    const client = await RemoteClient.connect({
      address: address1,
      queue: 'q',
      epoch: 1,
      reconnect: async (cause) => {
        causes.push(cause);
        assert.equal(server2, undefined, 'reconnect is asked once for this loss');
        server2 = startServer(t, address2, 2, applied);
        await server2.line('listening');
        return { address: address2, epoch: 2 };
      },
    });
    const settled = new Map<number, unknown>();
    const failures: Error[] = [];
    const ask = (n: number): Promise<void> =>
      client.request({ n }).then(
        (v) => {
          assert.equal(settled.has(n), false, `request ${n} settled twice`);
          settled.set(n, v);
        },
        (err: Error) => void failures.push(err),
      );
    const first = Array.from({ length: 1_000 }, (_, i) => ask(i + 1));
    await Promise.all(first);
    assert.equal(client.owner.epoch, 1);
    const second: Array<Promise<void>> = [];
    for (let n = 1_001; n <= 1_500; n++) second.push(ask(n));
    await turn();
    for (let n = 1_501; n <= 2_000; n++) second.push(ask(n));
    await Promise.all(second);

    assert.deepEqual(failures, []);
    assert.equal(causes.length, 1);
    assert.equal(client.owner.epoch, 2);
    assert.equal(settled.size, 2_000);
    for (let n = 1; n <= 2_000; n++) assert.equal(settled.get(n), n * 2, `reply to ${n}`);
    // Applied once each, across both servers; the second told the first's applied-but-unanswered ones as repeats.
    const keys = appliedKeys(applied);
    assert.equal(keys.length, 2_000);
    assert.equal(new Set(keys).size, 2_000);
    assert.deepEqual(keys, Array.from({ length: 2_000 }, (_, i) => `${client.clientId}:${i + 1}`));
    const dups = fs.readFileSync(`${applied}.dup`, 'utf8').split('\n').filter(Boolean);
    assert.deepEqual(dups, Array.from({ length: 250 }, (_, i) => `dup ${client.clientId}:${1_001 + i}`));
    // kill -9 left the first server's socket file; the second swept it when it started.
    assert.equal(fs.existsSync(address1), false, 'the dead server socket was swept');
    await client.close();
  });
});
