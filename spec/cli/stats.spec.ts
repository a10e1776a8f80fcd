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
        fenced: 0,
        types: { 1: 34, 2: 33, 3: 33 },
        compressed: 10,
        encryptedRecords: 0,
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
      `live          99 records, ${bytes - 64 * segs - 136} bytes`,
      `dead          0 records, ${64 * segs + 136} bytes (headers, damage, torn tails, preallocated zeros, fenced records)`,
      'damaged       136 bytes',
      'fenced        0 records',
      'by type       1: 34, 2: 33, 3: 32',
      'compressed    10 records',
      'encrypted     0 records (log is not encrypted)',
      '',
    ]);
  });
});
