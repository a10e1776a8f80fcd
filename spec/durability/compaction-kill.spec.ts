/**
 * Compaction killed for real (SIGKILL) at each of its file-system steps: a child runs log.compact() through an
 * Fs that kills the process at its nth call, for every n. After each kill the log must reopen by itself with
 * exactly the same live records, byte for byte, and nothing that was not there before.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Log } from '../../lib/log/log.js';
import { readLog } from '../../lib/log/read-log.js';
import { verifyLog } from '../../lib/log/verify.js';
import { runAndKill } from '../helpers/child.js';
import { payloadFor, tempDir } from '../helpers/tmp.js';
import { isLiveSeq } from './children/payload.js';

const compactor = fileURLToPath(new URL('./children/compactor.js', import.meta.url));

function records(dir: string): Map<number, string> {
  const out = new Map<number, string>();
  readLog(dir, { onEntry: (e) => void out.set(e.seq, Buffer.from(e.raw()).toString('hex')) });
  return out;
}

describe('compaction killed with SIGKILL at each step', () => {
  it('keeps exactly the live records whatever step the kill lands on', { timeout: 300_000 }, async (t) => {
    const template = tempDir(t);
    const log = await Log.open(template, { maxSegmentBytes: 8192 });
    for (let i = 0; i < 600; i++) await log.append(1, payloadFor(i, 60 + (i % 40)));
    await log.checkpoint(Buffer.from('before compaction'));
    await log.close();
    const before = records(template);
    const live = [...before].filter(([seq]) => isLiveSeq(seq));

    const probe = tempDir(t);
    fs.cpSync(template, probe, { recursive: true });
    const out = execFileSync(process.execPath, [compactor, probe, '0'], { encoding: 'utf8' });
    const calls = Number(/calls (\d+)/.exec(out)![1]);
    assert.ok(calls > 20, `compaction made only ${calls} fs calls`);

    for (let n = 1; n <= calls; n++) {
      const dir = tempDir(t);
      fs.cpSync(template, dir, { recursive: true });
      const child = await runAndKill(compactor, [dir, String(n)], {});
      assert.equal(child.signal, 'SIGKILL', `kill at call ${n}: ${child.stderr}`);
      const reopened = await Log.open(dir);
      await reopened.close();
      const after = records(dir);
      for (const [seq, raw] of live) assert.equal(after.get(seq), raw, `live seq ${seq} changed (kill at call ${n})`);
      for (const [seq, raw] of after) assert.equal(before.get(seq), raw, `seq ${seq} is new or altered (kill at call ${n})`);
      assert.equal(verifyLog(dir).ok, true, `verify after kill at call ${n}`);
      fs.rmSync(dir, { recursive: true, force: true });
    }
    t.diagnostic(`killed compaction at each of its ${calls} fs calls`);
  });
});
