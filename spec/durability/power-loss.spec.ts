/**
 * Power loss while appending: a log on a FaultFs takes concurrent appends (many in flight, batches that roll
 * segments, a checkpoint among them), is abandoned at a random moment without close, and the power is cut
 * (FaultFs.powerLoss: every byte and directory entry not fsynced is forgotten). The directory is then reopened
 * with the real fs. Each run is one seeded PRNG's choice of batch sizes, payload sizes, event-loop turns between
 * batches and the cut, so a failing seed replays exactly.
 *
 * What must hold after every cut:
 *   - all modes: the log reopens, verify is ok, and what is left is a prefix of what was appended: seqs 1..k,
 *     seq s holding exactly the sth payload appended (nothing reordered, altered or invented);
 *   - fsync: every acknowledged append is in that prefix;
 *   - batch and none: everything appended before a resolved sync() is in it;
 *   - a checkpoint that recovery accepts covers exactly the records its state was taken after: replaying from it
 *     yields every record from the seq the state names onward.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { Log } from '../../lib/log/log.js';
import { readLog } from '../../lib/log/read-log.js';
import { verifyLog } from '../../lib/log/verify.js';
import type { Durability } from '../../lib/log/writer.js';
import { FaultFs } from '../helpers/fault-fs.js';
import { tempDir } from '../helpers/tmp.js';

const SEGMENT_BYTES = 4096;
const BATCH_INTERVAL_MS = 5;

/** mulberry32: a small seeded PRNG; int(n) is uniform in [0, n). */
function prng(seed: number): { int: (n: number) => number } {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { int: (n) => Math.floor(next() * n) };
}

/** The payload of the idth append: its id, then bytes derived from it. */
function payloadOf(id: number, size: number): Buffer {
  const b = Buffer.alloc(Math.max(4, size), (id * 31) % 251);
  b.writeUInt32LE(id, 0);
  return b;
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

interface Run {
  /** Payloads in append order: the idth append got seq id + 1. */
  appended: Buffer[];
  /** Seq → id of every append that resolved before the cut. */
  acked: Map<number, number>;
  /** Every append before this seq had resolved sync() before the cut. */
  syncedBefore: number;
}

/**
 * Appends in seeded batches on a FaultFs log, then cuts the power at a seeded moment. `withSync` makes one batch
 * end with an awaited sync(). Batch-mode timers are mocked and ticked at seeded moments.
 */
async function appendThenCutPower(t: TestContext, dir: string, durability: Durability, seed: number, withSync: boolean, untracked = false): Promise<Run> {
  const rng = prng(seed);
  const ffs = new FaultFs();
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const log = await Log.open(dir, { fs: ffs, lock: false, durability, maxSegmentBytes: SEGMENT_BYTES, batchIntervalMs: BATCH_INTERVAL_MS });
  const run: Run = { appended: [], acked: new Map(), syncedBefore: 1 };
  let cut = false;
  const batches = 3 + rng.int(6);
  const cutAfter = rng.int(batches);
  const checkpointAt = rng.int(batches);
  const syncAt = withSync ? rng.int(cutAfter + 1) : -1;
  for (let b = 0; b < batches; b++) {
    const n = 1 + rng.int(40);
    for (let i = 0; i < n; i++) {
      const id = run.appended.length;
      const payload = payloadOf(id, 4 + rng.int(400));
      run.appended.push(payload);
      if (untracked && rng.int(4) > 0) {
        // appendUntracked, and now and then whenAppendedDurable(): when it settles, everything appended before
        // the call is acknowledged, however many calls share its promise.
        log.appendUntracked(1 + (id % 3), payload);
        if (rng.int(3) === 0) {
          const upTo = log.nextSeq - 1;
          log.whenAppendedDurable().then(
            () => {
              if (!cut) for (let seq = 1; seq <= upTo; seq++) if (!run.acked.has(seq)) run.acked.set(seq, seq - 1);
            },
            () => undefined,
          );
        }
        continue;
      }
      log.append(1 + (id % 3), payload).then(
        (ptr) => {
          if (!cut) run.acked.set(ptr.seq, id);
        },
        () => undefined, // Only after the cut: the dead FaultFs fails everything still in flight.
      );
    }
    if (b === checkpointAt) {
      const state = Buffer.from(JSON.stringify({ nextSeq: log.nextSeq }));
      log.checkpoint(state).catch(() => undefined); // Not awaited: appends go on beside it. Fails only after the cut.
    }
    if (b === syncAt) {
      const upTo = log.nextSeq;
      await log.sync();
      run.syncedBefore = upTo;
    }
    for (let k = rng.int(5); k > 0; k--) {
      await turn();
      if (rng.int(3) === 0) t.mock.timers.tick(BATCH_INTERVAL_MS);
    }
    if (b === cutAfter) break;
  }
  cut = true;
  ffs.powerLoss(); // The log is abandoned, never closed: the process is gone.
  t.mock.timers.reset();
  return run;
}

/** Reopens with the real fs and checks everything that must hold in every mode; returns the seqs present. */
async function reopenAndCheck(dir: string, run: Run): Promise<number[]> {
  const log = await Log.open(dir);
  let seqs: number[] = [];
  try {
    readLog(dir, {
      onEntry: (e) => {
        assert.ok(e.seq >= 1 && e.seq <= run.appended.length, `seq ${e.seq} was never appended`);
        assert.deepEqual(e.payload(), run.appended[e.seq - 1], `seq ${e.seq} holds the wrong payload`);
        seqs.push(e.seq);
      },
    });
    assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1), 'the records left are not a prefix');
    const replayed: number[] = [];
    const { state } = log.replay((e) => void replayed.push(e.seq));
    const from = state ? (JSON.parse(state.toString()) as { nextSeq: number }).nextSeq : 1;
    assert.deepEqual(replayed, seqs.filter((s) => s >= from), `replay from the checkpoint (state says seq ${from}) misses records`);
    assert.equal(log.nextSeq > (seqs[seqs.length - 1] ?? 0), true);
  } finally {
    await log.close();
  }
  const report = verifyLog(dir);
  assert.equal(report.ok, true, JSON.stringify(report.damage));
  return seqs;
}

const SEEDS = Array.from({ length: 16 }, (_, i) => 1000 + i * 7919);

describe('power loss while appending (fsync)', () => {
  for (const seed of SEEDS) {
    it(`keeps every acknowledged record (seed ${seed})`, async (t) => {
      const dir = tempDir(t);
      const run = await appendThenCutPower(t, dir, 'fsync', seed, false);
      const seqs = await reopenAndCheck(dir, run);
      const present = new Set(seqs);
      for (const [seq, id] of run.acked) {
        assert.equal(seq, id + 1, `append ${id} was acknowledged as seq ${seq}`);
        assert.ok(present.has(seq), `acknowledged seq ${seq} was lost`);
      }
    });
  }
});

describe('power loss while appending untracked, acknowledged by whenAppendedDurable (fsync)', () => {
  let acknowledged = 0;
  for (const seed of SEEDS.slice(0, 8)) {
    it(`keeps every acknowledged record (seed ${seed})`, async (t) => {
      const dir = tempDir(t);
      const run = await appendThenCutPower(t, dir, 'fsync', seed, false, true);
      const seqs = await reopenAndCheck(dir, run);
      const present = new Set(seqs);
      acknowledged += run.acked.size;
      for (const [seq] of run.acked) assert.ok(present.has(seq), `acknowledged seq ${seq} was lost`);
    });
  }
  it('acknowledged records in those runs (else they would prove nothing)', () => {
    assert.ok(acknowledged > 0);
  });
});

for (const durability of ['batch', 'none'] as const) {
  describe(`power loss while appending (${durability})`, () => {
    for (const seed of SEEDS.slice(0, 8)) {
      it(`reopens with a prefix of what was appended (seed ${seed})`, async (t) => {
        const dir = tempDir(t);
        await reopenAndCheck(dir, await appendThenCutPower(t, dir, durability, seed, false));
      });
    }
    for (const seed of SEEDS.slice(0, 4)) {
      it(`keeps everything appended before a resolved sync() (seed ${seed})`, async (t) => {
        const dir = tempDir(t);
        const run = await appendThenCutPower(t, dir, durability, seed, true);
        const seqs = await reopenAndCheck(dir, run);
        assert.ok(seqs.length >= run.syncedBefore - 1, `synced up to seq ${run.syncedBefore - 1}, only ${seqs.length} left`);
      });
    }
  });
}
