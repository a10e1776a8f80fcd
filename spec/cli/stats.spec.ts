import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { flipByte, segmentFiles, tempDir } from '../helpers/tmp.js';
import { runCli, writeLog, type RecordSpec } from '../helpers/cli.js';

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
      `dead          0 records, ${64 * segs + 136} bytes (removed jobs' records, headers, damage, the head's tail, fenced records)`,
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
