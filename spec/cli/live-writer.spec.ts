/**
 * The read commands beside an owner that appends as fast as it can, in another process, in fsync mode: the head
 * holds preallocated zeros and a record may be half-written at any read. Each test runs the commands in a loop
 * bounded by count, waiting before each round until the writer has acknowledged more appends (so it is writing
 * all along), in-process (the commands' run, as dump.spec.ts does) and through the real binary.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { runDump } from '../../cli/commands/dump.js';
import { runStats } from '../../cli/commands/stats.js';
import { runVerify } from '../../cli/commands/verify.js';
import { memoryIo, type CliIo } from '../../cli/io.js';
import { flipByte, segmentFiles, tempDir } from '../helpers/tmp.js';
import { ndjson, runCli, type CliRun } from '../helpers/cli.js';

const WRITER = fileURLToPath(new URL('./children/live-writer.js', import.meta.url));
const ROUNDS = 30;
const PAST_THE_END = 1_000_000_000_000;
/** Safety net for the writer to show progress; never a measurement. */
const PROGRESS_MS = 20_000;

interface LiveWriter {
  pid: number;
  /** Resolves once the writer has acknowledged appends since the last call (or since it opened). */
  progress(): Promise<void>;
  /** Resolves once it has acknowledged at least n appends. */
  reach(n: number): Promise<void>;
  stop(): Promise<void>;
}

async function startWriter(mode: 'log' | 'queue', dir: string, maxSegmentBytes: number): Promise<LiveWriter> {
  const child = spawn(process.execPath, [WRITER, mode, dir, String(maxSegmentBytes)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let appended = 0;
  let opened = false;
  let stderr = '';
  let exited = false;
  const waiters = new Set<() => void>();
  let partial = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      if (line === 'open') opened = true;
      else if (line.startsWith('n ')) appended = Number(line.slice(2));
    }
    for (const w of waiters) w();
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (c: string) => (stderr += c));
  const exit = new Promise<void>((resolve) => child.on('exit', () => {
    exited = true;
    for (const w of waiters) w();
    resolve();
  }));
  const until = (check: () => boolean, what: string): Promise<void> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`the ${mode} writer did not ${what} within ${PROGRESS_MS} ms; stderr: ${stderr}`)), PROGRESS_MS);
      const done = (err?: Error): void => {
        clearTimeout(timer);
        waiters.delete(poll);
        if (err) reject(err);
        else resolve();
      };
      const poll = (): void => {
        if (check()) done();
        else if (exited) done(new Error(`the ${mode} writer exited: ${stderr}`));
      };
      waiters.add(poll);
      poll();
    });
  await until(() => opened, 'open');
  let seen = appended;
  return {
    pid: child.pid!,
    progress: async () => {
      await until(() => appended > seen, 'append more');
      seen = appended;
    },
    reach: (n) => until(() => appended >= n, `reach ${n} appends`),
    stop: async () => {
      if (!exited) child.kill('SIGKILL');
      await exit;
    },
  };
}

/** Runs a command in this process, as the binary would, and collects what it printed. */
function inProcess<A>(run: (args: A, io: CliIo) => number, args: A): CliRun {
  const { io, stdout, stderr } = memoryIo();
  const code = run(args, io);
  return { code, stdout: stdout.text, stderr: stderr.text };
}

const common = (dir: string) => ({ dir, keyFile: undefined, json: true });

describe('spoolq beside an owner appending as fast as it can', () => {
  const WRITERS: Array<['queue' | 'log', number, string]> = [
    ['queue', 256 * 1024, 'Queue.add'],
    ['log', 64 * 1024, 'Log.append'],
  ];
  for (const [mode, maxSegmentBytes, what] of WRITERS) {
    it(`never reports damage while ${what} runs in fsync mode (${ROUNDS} rounds of verify, dump past the end and stats)`, async (t) => {
      const root = tempDir(t);
      const dir = path.join(root, 'q');
      const writer = await startWriter(mode, mode === 'queue' ? root : dir, maxSegmentBytes);
      try {
        let zerosSeen = 0;
        let firstSeq = 0;
        let lastSeq = 0;
        for (let round = 0; round < ROUNDS; round++) {
          await writer.progress();
          const verify = inProcess(runVerify, common(dir));
          const report = JSON.parse(verify.stdout);
          assert.deepEqual(report.damage, [], `round ${round}: verify found damage`);
          assert.equal(report.ok, true, `round ${round}`);
          assert.equal(verify.code, 0, `round ${round}`);
          assert.equal(report.ownerPid, writer.pid);
          assert.ok(report.tornTail === undefined || ['zero', 'incomplete', 'garbage'].includes(report.tornTail.kind));

          const dump = inProcess(runDump, { ...common(dir), fromSeq: PAST_THE_END, limit: undefined });
          assert.deepEqual([dump.code, dump.stdout, dump.stderr], [0, '', ''], `round ${round}: dump --from past the end`);

          const statsRun = inProcess(runStats, common(dir));
          assert.equal(statsRun.code, 0);
          const stats = JSON.parse(statsRun.stdout);
          assert.equal(stats.damagedBytes, 0, `round ${round}: stats counted damaged bytes`);
          assert.equal(stats.liveness.by, mode === 'queue' ? 'jobs' : 'log');
          if (stats.preallocatedBytes > 0) zerosSeen++;
          firstSeq ||= stats.lastSeq;
          lastSeq = stats.lastSeq;
        }
        // What makes the loop mean something: the head held preallocated zeros while it was read, and grew.
        assert.ok(zerosSeen > 0, 'no round saw preallocated zeros');
        assert.ok(lastSeq > firstSeq, 'the writer appended during the rounds');

        // And the real binary, as a user runs it beside the app.
        for (let round = 0; round < 3; round++) {
          await writer.progress();
          const [verify, dump, stats] = await Promise.all([
            runCli(['verify', dir]),
            runCli(['dump', dir, '--from', String(PAST_THE_END)]),
            runCli(['stats', dir, '--json']),
          ]);
          assert.equal(verify.code, 0, verify.stdout);
          assert.ok(verify.stdout.split('\n').includes('result    OK'), verify.stdout);
          assert.deepEqual([dump.code, dump.stdout, dump.stderr], [0, '', '']);
          assert.equal(stats.code, 0, stats.stderr);
          assert.equal(JSON.parse(stats.stdout).damagedBytes, 0);
        }
      } finally {
        await writer.stop();
      }
    });
  }

  it('still reports a byte flipped in the middle of a sealed segment, every time, while Log.append runs', async (t) => {
    const dir = path.join(tempDir(t), 'q');
    const writer = await startWriter('log', dir, 32 * 1024);
    try {
      while (segmentFiles(dir).length < 3) await writer.progress();
      const sealed = segmentFiles(dir)[0]!;
      const at = Math.floor(fs.statSync(sealed).size / 2);
      flipByte(sealed, at);
      for (let round = 0; round < 10; round++) {
        await writer.progress();
        const verify = inProcess(runVerify, common(dir));
        assert.equal(verify.code, 1, `round ${round}`);
        const report = JSON.parse(verify.stdout);
        assert.equal(report.ok, false);
        assert.equal(report.damage.length, 1, JSON.stringify(report.damage));
        const [d] = report.damage;
        assert.ok(d.segmentId === 1 && d.offset <= at && at < d.end, JSON.stringify(d));

        const dump = inProcess(runDump, { ...common(dir), fromSeq: PAST_THE_END, limit: undefined });
        assert.equal(dump.code, 1);
        assert.equal(dump.stdout, '');
        assert.match(dump.stderr, /^spoolq: skipped 1 damaged range\(s\), \d+ bytes/);

        const stats = JSON.parse(inProcess(runStats, common(dir)).stdout);
        assert.equal(stats.damagedBytes, d.end - d.offset);
      }
    } finally {
      await writer.stop();
    }
  });

  it('still reports a byte flipped in the head before its last record, every time, while Log.append runs', async (t) => {
    const dir = path.join(tempDir(t), 'q');
    const writer = await startWriter('log', dir, 64 * 1024 * 1024);
    try {
      await writer.reach(40);
      const [first] = ndjson<{ seq: number; offset: number; size: number }>(
        inProcess(runDump, { ...common(dir), fromSeq: 1, limit: 1 }).stdout,
      );
      assert.deepEqual([first!.seq, first!.offset], [1, 64]);
      flipByte(segmentFiles(dir)[0]!, first!.offset + 36); // the first byte of its payload
      const expected = [{ segmentId: 1, offset: first!.offset, end: first!.offset + first!.size, reason: 'checksum mismatch' }];
      for (let round = 0; round < 10; round++) {
        await writer.progress();
        const verify = inProcess(runVerify, common(dir));
        assert.equal(verify.code, 1, `round ${round}`);
        const report = JSON.parse(verify.stdout);
        assert.deepEqual(report.damage, expected, `round ${round}`);
        assert.equal(report.firstSeq, 2);
        const dump = inProcess(runDump, { ...common(dir), fromSeq: PAST_THE_END, limit: undefined });
        assert.equal(dump.code, 1);
        assert.match(dump.stderr, new RegExp(`^spoolq: skipped 1 damaged range\\(s\\), ${first!.size} bytes`));
        assert.equal(JSON.parse(inProcess(runStats, common(dir)).stdout).damagedBytes, first!.size);
      }
      const human = await runCli(['verify', dir]);
      assert.equal(human.code, 1);
      assert.ok(human.stdout.split('\n').includes('result    DAMAGED'), human.stdout);
    } finally {
      await writer.stop();
    }
  });
});
