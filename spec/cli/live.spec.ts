import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { Log } from '../../lib/index.js';
import { tempDir } from '../helpers/tmp.js';
import { ndjson, runCli } from '../helpers/cli.js';

const payload = (seq: number): string => `live-${seq}-${'p'.repeat(seq % 50)}`;

describe('spoolq beside a live owner', () => {
  it('reads a log that this process holds open and keeps appending to, without taking its lock', async (t) => {
    const dir = path.join(tempDir(t), 'q');
    // Small segments, so that the owner rolls to new ones while the CLI reads.
    const log = await Log.open(dir, { durability: 'batch', maxSegmentBytes: 16 * 1024 });
    t.after(() => log.close());
    const append = (): Promise<unknown> => log.append(1, Buffer.from(payload(log.nextSeq)));
    for (let i = 0; i < 300; i++) await append();
    assert.equal(fs.existsSync(path.join(dir, 'owner')), true, 'the owner lock is held');

    let writing = true;
    let appended = 300;
    const writer = (async () => {
      while (writing) {
        // A small batch, then a pause: keeps appends going all through the CLI's run without flooding it.
        await Promise.all(Array.from({ length: 10 }, append));
        appended += 10;
        await delay(1);
      }
    })();
    const [dump, verify, stats] = await Promise.all([
      runCli(['dump', dir, '--json']),
      runCli(['verify', dir, '--json']),
      runCli(['stats', dir, '--json']),
    ]);
    writing = false;
    await writer;
    assert.ok(appended > 300, 'the owner appended while the CLI ran');

    assert.equal(dump.code, 0, dump.stderr);
    const rows = ndjson<{ seq: number; payload: string }>(dump.stdout);
    assert.ok(rows.length >= 300, `dump saw ${rows.length} records`);
    assert.deepEqual(rows.map((r) => r.seq), Array.from({ length: rows.length }, (_, i) => i + 1));
    rows.forEach((r) => assert.equal(r.payload, payload(r.seq)));

    assert.equal(verify.code, 0, verify.stdout);
    const report = JSON.parse(verify.stdout);
    assert.equal(report.ok, true);
    assert.deepEqual(report.damage, []);
    assert.equal(report.firstSeq, 1);
    assert.ok(report.records >= 300 && report.records <= appended);

    assert.equal(stats.code, 0, stats.stderr);
    const s = JSON.parse(stats.stdout);
    assert.equal(s.firstSeq, 1);
    assert.equal(s.lastSeq, s.records);
    assert.ok(s.records >= 300 && s.records <= appended);

    // The owner was never disturbed: it still appends, and everything it wrote is there.
    const last = await log.append(1, Buffer.from(payload(log.nextSeq)));
    assert.equal(last.seq, appended + 1);
    const after = await runCli(['dump', dir, '--json', '--from', String(appended - 1)]);
    assert.deepEqual(ndjson<{ seq: number }>(after.stdout).map((r) => r.seq), [appended - 1, appended, appended + 1]);
  });
});
