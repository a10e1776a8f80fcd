import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { Log } from '../../lib/index.js';
import { flipByte, payloadFor, segmentFiles, tempDir, truncateBy } from '../helpers/tmp.js';
import { runCli, snapshotFiles, writeLog, type RecordSpec } from '../helpers/cli.js';

// 20 records of 100-byte payloads: each record is 36 + 100 = 136 bytes, the first at 64 (after the header).
const RECORD_BYTES = 136;
const FIRST = 64;
const records: RecordSpec[] = Array.from({ length: 20 }, (_, i) => ({ type: 1, payload: payloadFor(i) }));
const recordAt = (seq: number): number => FIRST + (seq - 1) * RECORD_BYTES;

async function cleanLog(t: { after: (fn: () => void) => void }): Promise<string> {
  const dir = path.join(tempDir(t), 'q');
  await writeLog(dir, records);
  return dir;
}

describe('spoolq verify', () => {
  it('reports a clean log as ok and exits 0', async (t) => {
    const dir = await cleanLog(t);
    const human = await runCli(['verify', dir]);
    assert.equal(human.code, 0, human.stderr);
    assert.equal(human.stderr, '');
    const lines = human.stdout.split('\n');
    assert.ok(lines.includes('result    OK'), human.stdout);
    assert.ok(lines.includes('records   20 (seq 1..20)'), human.stdout);
    assert.ok(lines.includes(`  segment 1  generation 0  records 20  size ${recordAt(21)}  end ${recordAt(21)}  tail clean`));
    assert.ok(lines.includes('damaged ranges: none'));
    assert.ok(lines.includes('torn tail: none'));

    const json = await runCli(['verify', dir, '--json']);
    assert.equal(json.code, 0);
    const report = JSON.parse(json.stdout);
    assert.equal(report.ok, true);
    assert.equal(report.records, 20);
    assert.equal(report.firstSeq, 1);
    assert.equal(report.lastSeq, 20);
    assert.equal(report.bytes, recordAt(21));
    assert.deepEqual(report.damage, []);
    assert.equal(report.tornTail, undefined);
    assert.deepEqual(report.index, { present: false, usable: false });
  });

  it('names the damaged range of a flipped byte inside an interior record and exits 1', async (t) => {
    const dir = await cleanLog(t);
    const [seg] = segmentFiles(dir);
    flipByte(seg!, recordAt(5) + 40);
    const human = await runCli(['verify', dir]);
    assert.equal(human.code, 1, human.stderr);
    const lines = human.stdout.split('\n');
    assert.ok(lines.includes('result    DAMAGED'), human.stdout);
    assert.ok(lines.includes('damaged ranges: 1'));
    assert.ok(
      lines.includes(`  segment 1  offset ${recordAt(5)}  end ${recordAt(6)}  bytes 136  reason: checksum mismatch`),
      human.stdout,
    );

    const json = await runCli(['verify', dir, '--json']);
    assert.equal(json.code, 1);
    const report = JSON.parse(json.stdout);
    assert.equal(report.ok, false);
    assert.equal(report.records, 19);
    assert.deepEqual(report.damage, [{ segmentId: 1, offset: recordAt(5), end: recordAt(6), reason: 'checksum mismatch' }]);
  });

  it('reports a tail cut mid-record as a torn tail, not a failure, and exits 0', async (t) => {
    const dir = await cleanLog(t);
    const [seg] = segmentFiles(dir);
    truncateBy(seg!, 50);
    const human = await runCli(['verify', dir]);
    assert.equal(human.code, 0, human.stderr);
    const lines = human.stdout.split('\n');
    assert.ok(lines.includes('result    OK'), human.stdout);
    assert.ok(lines.includes(`torn tail: segment 1  offset ${recordAt(20)}  bytes 86  kind incomplete`), human.stdout);
    assert.ok(lines.includes('  (a write cut short by a crash: not a failure; the next open cuts it off)'), human.stdout);

    const report = JSON.parse((await runCli(['verify', dir, '--json'])).stdout);
    assert.equal(report.ok, true);
    assert.equal(report.records, 19);
    assert.equal(report.lastSeq, 19);
    assert.deepEqual(report.damage, []);
    assert.deepEqual(report.tornTail, { segmentId: 1, offset: recordAt(20), bytes: 86, kind: 'incomplete' });
    assert.equal(report.ownerPid, undefined);
  });

  it('reports the zeros a live fsync-mode owner allocates ahead of its appends as no failure', async (t) => {
    const dir = path.join(tempDir(t), 'q');
    const log = await Log.open(dir, { durability: 'fsync', preallocateBytes: 4096 });
    t.after(() => log.close());
    for (const r of records) await log.append(r.type, r.payload);
    const [seg] = segmentFiles(dir);
    // One extension at the first append: 4 KiB past the header, of which the 20 records use 2,720 bytes.
    assert.equal(fs.statSync(seg!).size, FIRST + 4096, 'the head holds zeros past its data');
    const zeros = FIRST + 4096 - recordAt(21);
    const human = await runCli(['verify', dir]);
    assert.equal(human.code, 0, human.stderr);
    const lines = human.stdout.split('\n');
    assert.ok(lines.includes('result    OK'), human.stdout);
    assert.ok(lines.includes('records   20 (seq 1..20)'), human.stdout);
    assert.ok(lines.includes(`zeros past the end of data: segment 1  offset ${recordAt(21)}  bytes ${zeros}`), human.stdout);
    // This process owns the log: verify names it as the live owner.
    assert.ok(lines.includes(`  (space the live owner (pid ${process.pid}) allocates ahead of its appends: not a failure)`), human.stdout);
    assert.equal(JSON.parse((await runCli(['verify', dir, '--json'])).stdout).ownerPid, process.pid);
    await log.close();
    assert.equal(fs.statSync(seg!).size, recordAt(21), 'close cuts the zeros off');
    assert.ok((await runCli(['verify', dir])).stdout.split('\n').includes('torn tail: none'));
  });

  it('changes no byte on disk, not even a torn tail that an open would cut', async (t) => {
    const dir = await cleanLog(t);
    const [seg] = segmentFiles(dir);
    flipByte(seg!, recordAt(3) + 50);
    truncateBy(seg!, 10);
    const before = snapshotFiles(dir);
    const runs = await Promise.all([
      runCli(['verify', dir]),
      runCli(['dump', dir, '--json']),
      runCli(['stats', dir]),
    ]);
    assert.deepEqual(runs.map((r) => r.code), [1, 1, 0]);
    assert.deepEqual(snapshotFiles(dir), before);
  });

  it('exits 2 with ERR_NOT_A_LOG for a directory that is not a queue', async (t) => {
    const root = tempDir(t);
    const foreign = path.join(root, 'foreign');
    fs.mkdirSync(foreign);
    fs.writeFileSync(path.join(foreign, 'notes.txt'), 'hello');
    // One case per command keeps the spawns few: each command reads the manifest the same way.
    const cases = [
      ['verify', path.join(root, 'missing')],
      ['dump', foreign],
      ['stats', path.join(foreign, 'notes.txt')],
    ];
    const runs = await Promise.all(cases.map((args) => runCli(args)));
    runs.forEach((r, i) => {
      assert.equal(r.code, 2, cases[i]!.join(' '));
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /^spoolq: ERR_NOT_A_LOG: .* is not a spoolq queue directory/);
    });
  });
});
