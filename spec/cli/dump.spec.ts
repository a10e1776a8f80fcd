import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { appendBytes, segmentFiles, tempDir } from '../helpers/tmp.js';
import { ndjson, runCli, textRecords, writeLog, type RecordSpec } from '../helpers/cli.js';
import { dumpCommand, runDump } from '../../cli/commands/dump.js';
import { memoryIo } from '../../cli/io.js';

// seq 1..8: "job-0".."job-7" (41-byte records); seq 9: 4 binary bytes; seq 10: 300 × "é" (600 bytes of text).
const LONG = 'é'.repeat(300);
const records: RecordSpec[] = [
  ...textRecords(8),
  { type: 4, payload: Buffer.from([0, 1, 2, 0xff]) },
  { type: 5, payload: Buffer.from(LONG) },
];
const offsetOf = (seq: number): number => 64 + 41 * Math.min(seq - 1, 8) + (seq === 10 ? 40 : 0);

function expected(seq: number, epoch: number): Record<string, unknown> {
  const r = records[seq - 1]!;
  const text = seq !== 9;
  return {
    seq,
    type: r.type,
    epoch,
    segment: 1,
    offset: offsetOf(seq),
    size: 36 + r.payload.length,
    flags: 0,
    keyId: 0,
    compressed: false,
    encrypted: false,
    encoding: text ? 'utf8' : 'base64',
    payload: r.payload.toString(text ? 'utf8' : 'base64'),
  };
}

async function makeLog(t: { after: (fn: () => void) => void }): Promise<{ dir: string; epoch: number }> {
  const dir = path.join(tempDir(t), 'q');
  return { dir, epoch: await writeLog(dir, records) };
}

describe('spoolq dump', () => {
  it('prints one line per record: text quoted, binary as hex, long payloads cut with a marker', async (t) => {
    const { dir, epoch } = await makeLog(t);
    const run = await runCli(['dump', dir]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stderr, '');
    const lines = run.stdout.split('\n');
    assert.equal(lines.length, 11);
    assert.equal(lines[10], '');
    assert.equal(lines[0], `seq=1 type=1 epoch=${epoch} segment=1 offset=64 size=41 plain=5 flags=- payload="job-0"`);
    assert.equal(lines[7], `seq=8 type=2 epoch=${epoch} segment=1 offset=351 size=41 plain=5 flags=- payload="job-7"`);
    assert.equal(lines[8], `seq=9 type=4 epoch=${epoch} segment=1 offset=392 size=40 plain=4 flags=- payload=hex:000102ff`);
    assert.equal(
      lines[9],
      `seq=10 type=5 epoch=${epoch} segment=1 offset=432 size=636 plain=600 flags=- ` +
        `payload="${'é'.repeat(160)}"…(+280 bytes)`,
    );
  });

  it('prints exactly the records from --from, at most --limit of them, as NDJSON', async (t) => {
    const { dir, epoch } = await makeLog(t);
    const [middle, end, past] = await Promise.all([
      runCli(['dump', dir, '--json', '--from', '3', '--limit', '4']),
      runCli(['dump', dir, '--json', '--from', '9', '--limit', '5']),
      runCli(['dump', dir, '--json', '--from', '11']),
    ]);
    assert.equal(middle.code, 0, middle.stderr);
    assert.deepEqual(ndjson(middle.stdout), [3, 4, 5, 6].map((s) => expected(s, epoch)));
    assert.equal(end.code, 0, end.stderr);
    assert.deepEqual(ndjson(end.stdout), [9, 10].map((s) => expected(s, epoch)));
    assert.equal(ndjson<{ payload: string }>(end.stdout)[1]!.payload, LONG);
    assert.equal(past.code, 0, past.stderr);
    assert.equal(past.stdout, '');
  });

  it('reports bytes after the last record of a sealed segment as damage (exit 1), but not those of the head', async (t) => {
    const dir = path.join(tempDir(t), 'q');
    await writeLog(dir, textRecords(400), { maxSegmentBytes: 4096 });
    const files = segmentFiles(dir);
    assert.ok(files.length > 2);
    appendBytes(files[0]!, Buffer.alloc(100)); // zeros: the end of data in the head, damage in a sealed segment
    appendBytes(files[files.length - 1]!, Buffer.alloc(300));
    const run = await runCli(['dump', dir, '--json']);
    assert.equal(run.code, 1);
    assert.equal(ndjson(run.stdout).length, 400);
    assert.equal(run.stderr, "spoolq: skipped 1 damaged range(s), 100 bytes; run 'spoolq verify' for details\n");
  });

  const BAD_NUMBERS: Array<[string, string]> = [['limit', '0'], ['from', '0'], ['from', '2x'], ['limit', '1e3'], ['from', '-1']];
  for (const [option, value] of BAD_NUMBERS) {
    it(`refuses --${option} ${value} as bad usage (ERR_INVALID_ARG)`, () => {
      assert.throws(() => dumpCommand.args({ 'queue-dir': 'q', [option]: value }), {
        code: 'ERR_INVALID_ARG',
        message: `--${option} must be a whole number of at least 1, got '${value}'`,
      });
    });
  }

  it('can be called in-process, writing to the io it is given', async (t) => {
    const { dir, epoch } = await makeLog(t);
    const { io, stdout, stderr } = memoryIo();
    const code = runDump({ dir, keyFile: undefined, json: true, fromSeq: 8, limit: 2 }, io);
    assert.equal(code, 0);
    assert.equal(stderr.text, '');
    assert.deepEqual(ndjson(stdout.text), [8, 9].map((s) => expected(s, epoch)));
  });
});
