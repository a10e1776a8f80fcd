/**
 * kill -9 during appends: a child appends in fsync mode and reports every acknowledged seq; it is SIGKILLed at
 * random moments (during open and recovery, mid-batch, mid-roll) over and over on the same log. After each kill
 * the log must reopen by itself with every acknowledged record intact and nothing that was never appended.
 *
 * SPOOLQ_CRASH_KILLS sets the number of kills (default 50; the long run in the README uses 1000).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Log } from '../../lib/log/log.js';
import { verifyLog } from '../../lib/log/verify.js';
import { prng, runAndKill } from '../helpers/child.js';
import { tempDir } from '../helpers/tmp.js';
import { parsePayload } from './children/payload.js';

const KILLS = Number(process.env.SPOOLQ_CRASH_KILLS ?? 50);
const SEED = Number(process.env.SPOOLQ_CRASH_SEED ?? 20261122);
const SEGMENT_BYTES = 16 * 1024;
const appender = fileURLToPath(new URL('./children/appender.js', import.meta.url));

describe('kill -9 while appending (fsync)', () => {
  it(`keeps every acknowledged record across ${KILLS} kills (seed ${SEED})`, { timeout: 600_000 }, async (t) => {
    const dir = tempDir(t);
    const rand = prng(SEED);
    const acked = new Map<number, string>(); // seq -> "run:i"
    let killedDuringOpen = 0;
    for (let run = 1; run <= KILLS; run++) {
      const inFlight = [1, 4, 32, 128][Math.floor(rand() * 4)]!;
      const plan =
        rand() < 0.25
          ? { fromSpawn: true, afterMs: Math.floor(rand() * 60) }
          : { afterLines: 1 + Math.floor(rand() * 400), countLinesStarting: 'ack ' };
      const child = await runAndKill(appender, [dir, String(run), String(inFlight), String(SEGMENT_BYTES)], plan);
      assert.equal(child.signal, 'SIGKILL', `run ${run} ended by itself: ${child.stderr}`);
      if (!child.lines.some((l) => l.startsWith('open '))) killedDuringOpen++;
      for (const line of child.lines) {
        const [kind, seq, r, i] = line.split(' ');
        if (kind !== 'ack') continue;
        assert.equal(acked.has(Number(seq)), false, `seq ${seq} acknowledged twice`);
        acked.set(Number(seq), `${r}:${i}`);
      }

      const log = await Log.open(dir, { durability: 'fsync', maxSegmentBytes: SEGMENT_BYTES });
      try {
        const found = new Map<number, string>();
        const written = new Set<string>();
        let prev = 0;
        log.replay((e) => {
          assert.ok(e.seq > prev, `seq ${e.seq} after ${prev}`);
          prev = e.seq;
          const p = parsePayload(e.payload());
          assert.ok(p, `record ${e.seq} holds a payload that was never appended`);
          const key = `${p.run}:${p.i}`;
          assert.equal(written.has(key), false, `append ${key} appears twice`);
          written.add(key);
          found.set(e.seq, key);
        });
        for (const [seq, key] of acked) {
          assert.equal(found.get(seq), key, `acknowledged seq ${seq} (${key}) is missing after kill ${run}`);
        }
        assert.equal(log.recovery.damage.length, 0, `kill ${run} left damage: ${JSON.stringify(log.recovery.damage)}`);
      } finally {
        await log.close();
      }
    }
    assert.ok(acked.size > KILLS, `only ${acked.size} acknowledged appends over ${KILLS} runs`);
    assert.equal(verifyLog(dir).ok, true);
    t.diagnostic(`${acked.size} acknowledged appends checked; ${killedDuringOpen} kills landed before open finished`);
  });
});
