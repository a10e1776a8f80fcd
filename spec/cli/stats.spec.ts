import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { Log, Queue } from '../../lib/index.js';
import { flipByte, segmentFiles, tempDir } from '../helpers/tmp.js';
import { ndjson, runCli, testKey, writeKeyFile, writeLog, type RecordSpec } from '../helpers/cli.js';

// 100 records of types 1,2,3 in turn; every tenth is 2000 compressible bytes (LZ4 from 200), the rest 100 bytes.
// Small segments so that the log spans several.
const records: RecordSpec[] = Array.from({ length: 100 }, (_, i) => ({
  type: 1 + (i % 3),
  payload: i % 10 === 0 ? Buffer.alloc(2000, 'z') : Buffer.alloc(100, i),
}));
const OPTS = { maxSegmentBytes: 4096, compression: { threshold: 200 } };

const fileBytes = (files: string[]): number => files.reduce((n, f) => n + fs.statSync(f).size, 0);

describe('spoolq stats', () => {
  it('counts exactly what was written', async (t) => {
    const dir = path.join(tempDir(t), 'q');
    await writeLog(dir, records, OPTS);
    const files = segmentFiles(dir);
    assert.ok(files.length > 1, 'the log should span several segments');
    const bytes = fileBytes(files);

    const run = await runCli(['stats', dir, '--json']);
    assert.equal(run.code, 0, run.stderr);
    const stats = JSON.parse(run.stdout);
    assert.deepEqual(
      { ...stats, dir: undefined },
      {
        dir: undefined,
        encrypted: false,
        maxSegmentBytes: 4096,
        segments: files.length,
        bytes,
        records: 100,
        firstSeq: 1,
        lastSeq: 100,
        live: { records: 100, bytes: bytes - 64 * files.length },
        dead: { records: 0, bytes: 64 * files.length },
        damagedBytes: 0,
        preallocatedBytes: 0,
        headTailBytes: 0,
        fenced: 0,
        types: { ADD: 34, ACTIVE: 33, COMPLETE: 33 },
        compressed: 10,
        encryptedRecords: 0,
        // A log written with Log directly: its payloads are not queue events, so there are no jobs to judge by.
        liveness: { by: 'log', reason: 'ERR_CORRUPT_RECORD: record 1: payload is not a queue event' },
      },
    );
  });

  it('prints the same counts for people, and counts damage as dead bytes', async (t) => {
    const dir = path.join(tempDir(t), 'q');
    await writeLog(dir, records, OPTS);
    const files = segmentFiles(dir);
    const bytes = fileBytes(files);
    // Damage seq 3 (type 3, an uncompressed 136-byte record in the first segment), found through dump.
    const json = JSON.parse((await runCli(['dump', dir, '--json', '--from', '3', '--limit', '1'])).stdout);
    flipByte(files[0]!, json.offset + 36 + 10);

    const run = await runCli(['stats', dir]);
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stdout.split('\n');
    const segs = files.length;
    assert.deepEqual(lines.slice(1), [
      `segments      ${segs} (rolled at 4096 bytes)`,
      `bytes         ${bytes}`,
      'records       99 (seq 1..100)',
      `live          99 records, ${bytes - 64 * segs - 136} bytes ` +
        '(every readable record: ERR_CORRUPT_RECORD: record 1: payload is not a queue event)',
      `dead          0 records, ${64 * segs + 136} bytes (removed jobs' records, headers, damage, preallocated zeros, the head's tail, fenced records)`,
      'damaged       136 bytes',
      'preallocated  0 bytes (zeros an fsync-mode owner keeps ahead of its appends: not damage)',
      "head tail     0 bytes (a record being written, or torn by a crash and cut at the next open: not damage)",
      'fenced        0 records',
      'by type       ADD: 34, ACTIVE: 33, COMPLETE: 32',
      'compressed    10 records',
      'encrypted     0 records (log is not encrypted)',
      '',
    ]);
  });
});

interface DumpRow {
  seq: number;
  type: number;
  size: number;
  payload: string;
}

/** A queue with 10 jobs added one by one (ids '1'..'10'), of which '2', '5' and '9' were then removed. */
async function queueWithRemovals(root: string, opts: { encryption?: { key: Buffer } } = {}): Promise<string> {
  const queue = new Queue('q', { dir: root, durability: 'none', ...opts });
  for (let i = 0; i < 10; i++) await queue.add('job', { i, pad: 'x'.repeat(i * 7) });
  for (const id of ['2', '5', '9']) assert.equal(await queue.remove(id), true);
  await queue.close();
  return path.join(root, 'q');
}

describe('spoolq stats on a queue', () => {
  it('names record types and counts the records of removed jobs as dead', async (t) => {
    const dir = await queueWithRemovals(tempDir(t));
    const [run, human, dump] = await Promise.all([runCli(['stats', dir, '--json']), runCli(['stats', dir]), runCli(['dump', dir, '--json'])]);
    assert.equal(run.code, 0, run.stderr);
    const stats = JSON.parse(run.stdout);
    const rows = ndjson<DumpRow>(dump.stdout);
    const adds = rows.filter((r) => r.type === 1).map((r) => ({ id: (JSON.parse(r.payload) as { id: string }).id, size: r.size }));
    assert.deepEqual(adds.map((a) => a.id), ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10']);
    const kept = adds.filter((a) => !['2', '5', '9'].includes(a.id));
    const removeRecords = rows.filter((r) => r.type === 8);
    assert.equal(removeRecords.length, 3);

    assert.deepEqual(stats.types, { ADD: 10, REMOVE: 3 });
    assert.deepEqual(stats.liveness, { by: 'jobs', jobs: 7 });
    assert.deepEqual(stats.live, { records: 7, bytes: kept.reduce((n, a) => n + a.size, 0) });
    // Dead: the three removed jobs' ADDs and the three REMOVEs (nothing needs a REMOVE once its job's ADD is gone).
    assert.equal(stats.dead.records, 6);
    assert.equal(stats.dead.bytes, stats.bytes - stats.live.bytes);
    assert.equal(stats.damagedBytes, 0);

    assert.equal(human.code, 0, human.stderr);
    const lines = human.stdout.split('\n');
    assert.ok(lines.includes('by type       ADD: 10, REMOVE: 3'), human.stdout);
    assert.ok(
      lines.includes(`live          7 records, ${stats.live.bytes} bytes (records of the 7 job(s) in the log; those of removed jobs are dead)`),
      human.stdout,
    );
  });

  it('shows a record type it does not know as type-N, and counts it live', async (t) => {
    const dir = await queueWithRemovals(tempDir(t));
    const log = await Log.open(dir, { durability: 'none' });
    await log.append(200, Buffer.from('{}'));
    await log.close();
    const stats = JSON.parse((await runCli(['stats', dir, '--json'])).stdout);
    assert.deepEqual(stats.types, { ADD: 10, REMOVE: 3, 'type-200': 1 });
    assert.equal(stats.live.records, 8);
    assert.equal(stats.dead.records, 6);
  });

  it('tells removed jobs apart in an encrypted queue only with its key, and says so without it', async (t) => {
    const root = tempDir(t);
    const key = testKey(0x5a);
    const dir = await queueWithRemovals(root, { encryption: { key } });
    const keyFile = writeKeyFile(root, 'k.hex', key.toString('hex'));
    const [withKey, without] = await Promise.all([
      runCli(['stats', dir, '--json', '--key-file', keyFile]),
      runCli(['stats', dir, '--json']),
    ]);
    assert.equal(withKey.code, 0, withKey.stderr);
    const judged = JSON.parse(withKey.stdout);
    assert.deepEqual(judged.liveness, { by: 'jobs', jobs: 7 });
    assert.deepEqual([judged.live.records, judged.dead.records], [7, 6]);
    assert.equal(without.code, 0, without.stderr);
    const unjudged = JSON.parse(without.stdout);
    assert.deepEqual(unjudged.liveness, { by: 'log', reason: 'the log is encrypted: give its keys to tell live jobs from removed ones' });
    assert.deepEqual([unjudged.live.records, unjudged.dead.records], [13, 0]);
    assert.deepEqual(unjudged.types, { ADD: 10, REMOVE: 3 });
  });
});
