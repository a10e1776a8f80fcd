/**
 * Question: what does a request over the owner's socket (lib/queue/remote/) cost between two processes: how many
 * requests per second with 1,000 in flight, and the round-trip latency (p50, p99) of one request at a time?
 *
 * Ours: a RemoteClient here and a RemoteServer in a child process (remote-fixture-server.ts) on a Unix socket in
 * a temp dir; the server's handler answers each request with its seq at once, so this measures the transport
 * (framing, JSON, per-turn batching, the kernel), not an owner behind it. A request body is ~130 B of JSON, the
 * size of an add with 100 B of data.
 *   - pipelined: one iteration issues 1,000 requests in one turn and awaits all their replies;
 *   - one at a time: one iteration is one request, awaited.
 * Baseline, interleaved round by round (A B A B): a raw net socket to an echo server in another child process,
 * the same bytes as our request frames: one write of 1,000 frames and read until all 1,000 are back; one frame
 * and read until it is back. No JSON, no promises per request: the floor of the syscalls and the wake-ups.
 *
 * DESIGN §2 quotes ~20 µs per round trip (p99 ~150 µs) and ~460k requests/s pipelined for a socket between two
 * Node processes; the table says what this run got.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RemoteClient } from '../lib/queue/remote/client.js';
import { encodeFrame } from '../lib/queue/remote/frame.js';
import {
  fmtInt, fmtRoundRatios, loadAverage, makeTempDir, markdownTable, median, printHeader, removeTempDir, runInterleaved,
  writeResults, type Row, type SideSamples,
} from './harness.js';
import { fmtMs, percentile } from './queue-common.js';

const IN_FLIGHT = 1_000;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const TIME_MS = Number(process.env.BENCH_TIME_MS ?? 1_000);
const BODY = { op: 'add', name: 'noop', data: { s: 'x'.repeat(92) }, opts: {} };
const FIXTURE = fileURLToPath(new URL('./remote-fixture-server.js', import.meta.url));

function startServer(mode: 'ours' | 'raw', address: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [FIXTURE, mode, address], { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`the ${mode} server exited (${code}) before listening`)));
  });
}

/** A raw client: `send` writes bytes, `until(n)` resolves once n more bytes came back. */
function rawClient(address: string): Promise<{ socket: net.Socket; roundTrip: (buf: Buffer) => Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(address);
    let want = 0;
    let done: (() => void) | undefined;
    socket.on('data', (chunk) => {
      want -= chunk.length;
      if (want <= 0 && done) {
        const d = done;
        done = undefined;
        d();
      }
    });
    socket.once('error', reject);
    socket.once('connect', () => resolve({
      socket,
      roundTrip: (buf) => new Promise<void>((r) => {
        want += buf.length;
        done = r;
        socket.write(buf);
      }),
    }));
  });
}

async function main(): Promise<void> {
  const dir = makeTempDir('remote');
  const oursAddress = path.join(dir, 'ours.sock');
  const rawAddress = path.join(dir, 'raw.sock');
  const frame = encodeFrame(JSON.stringify([3, [1, BODY]]));
  const header = printHeader({
    title: 'remote-roundtrip: requests over the owner socket between two processes',
    question: 'Requests/s with 1,000 in flight, and p50/p99 of one request at a time, client and server in two processes, beside a raw socket echo.',
    dir: path.dirname(dir),
    facts: [
      ['transport', `Unix domain socket in the temp dir; server in a child process (${process.platform === 'win32' ? 'named pipe' : 'AF_UNIX'})`],
      ['request', `${Buffer.byteLength(JSON.stringify(BODY))} B of JSON body (a frame of ${frame.length} B for one request); reply: the seq`],
      ['in flight', `${fmtInt(IN_FLIGHT)} issued in one turn, per pipelined iteration`],
      ['rounds', `${ROUNDS} × ${TIME_MS} ms per side and scenario, interleaved with the baseline`],
      ['baseline', 'raw net socket to an echo child: the same frame bytes, one write per batch, read until all bytes are back'],
    ],
  });
  const children = await Promise.all([startServer('ours', oursAddress), startServer('raw', rawAddress)]);
  try {
    const client = await RemoteClient.connect({ address: oursAddress, queue: 'bench', epoch: 1 });
    const raw = await rawClient(rawAddress);
    const rawBatch = Buffer.concat(Array.from({ length: IN_FLIGHT }, () => frame));
    const requests = new Array<Promise<unknown>>(IN_FLIGHT);
    const opts = { rounds: ROUNDS, timeMs: TIME_MS, iterations: 20, warmupMs: 200, warmupIterations: 20 };

    const pipelined = await runInterleaved({
      ours: {
        async: true,
        fn: async () => {
          for (let i = 0; i < IN_FLIGHT; i++) requests[i] = client.request(BODY);
          await Promise.all(requests);
        },
      },
      baseline: { async: true, fn: () => raw.roundTrip(rawBatch) },
    }, opts);
    const single = await runInterleaved({
      ours: { async: true, fn: () => client.request(BODY) },
      baseline: { async: true, fn: () => raw.roundTrip(frame) },
    }, { ...opts, iterations: 2_000 });

    await client.close();
    raw.socket.destroy();

    const rate = (s: SideSamples): number => (IN_FLIGHT / median(s.samples)) * 1_000;
    const roundRates = (s: SideSamples): number[] => s.roundMedians.map((m) => (IN_FLIGHT / m) * 1_000);
    const oursRates = roundRates(pipelined.ours);
    const baseRates = roundRates(pipelined.baseline);
    const us = (ms: number): string => fmtMs(ms * 1_000, 1);
    const rows: Row[] = [
      {
        scenario: 'pipelined, 1,000 in flight',
        unit: 'requests/s',
        ours: fmtInt(rate(pipelined.ours)),
        baseline: fmtInt(rate(pipelined.baseline)),
        'ours/base': (rate(pipelined.ours) / rate(pipelined.baseline)).toFixed(2),
        'round ratios': fmtRoundRatios(oursRates.map((r, i) => r / baseRates[i]!)),
        'DESIGN §2': '~460,000',
      },
    ];
    for (const [label, p, quoted] of [['one at a time, p50', 50, '~20'], ['one at a time, p99', 99, '~150']] as const) {
      const o = percentile(single.ours.samples, p);
      const b = percentile(single.baseline.samples, p);
      rows.push({
        scenario: label,
        unit: 'µs',
        ours: us(o),
        baseline: us(b),
        'ours/base': (o / b).toFixed(2),
        // Per-round medians exist, per-round p99s do not (too few tail samples a round): the ratios go on the p50 row.
        'round ratios': p === 50 ? fmtRoundRatios(single.ours.roundMedians.map((m, i) => m / single.baseline.roundMedians[i]!)) : '',
        'DESIGN §2': quoted,
      });
    }
    rows.push({
      scenario: 'one at a time, samples',
      unit: 'count',
      ours: fmtInt(single.ours.samples.length),
      baseline: fmtInt(single.baseline.samples.length),
      'ours/base': '',
      'round ratios': '',
      'DESIGN §2': '',
    });
    const table = markdownTable(rows);
    console.log(table + '\n');
    if (process.env.BENCH_ROUNDS || process.env.BENCH_TIME_MS) {
      console.log('BENCH_ROUNDS or BENCH_TIME_MS is set: results/remote-roundtrip.md left as it was');
      return;
    }
    const file = writeResults('remote-roundtrip', 'remote-roundtrip: requests over the owner socket between two processes', header, [
      '## Results',
      `Load average (1, 5, 15 min) when the run ended: ${loadAverage()}.`,
      table,
      '## Reading it',
      [
        '- pipelined: requests/s from the median iteration (1,000 requests issued in one turn, all replies awaited).',
        '  Ours goes as one REQUESTS frame and comes back as one REPLIES frame (one JSON.stringify, one Buffer, one write',
        '  each way); the baseline writes the same bytes in one write and reads until all are echoed.',
        '- one at a time: the latency of every iteration, pooled over the rounds, by nearest rank. "round ratios" compares',
        '  the per-round medians.',
        '- Ours pays per request: a promise, a Map entry, JSON of the body on both sides; the baseline pays none of that.',
      ].join('\n'),
    ]);
    console.log(`results written to ${file}`);
  } finally {
    for (const child of children) child.kill('SIGKILL');
    removeTempDir(dir);
  }
}

await main();
