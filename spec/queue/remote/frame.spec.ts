/**
 * lib/queue/remote/frame.ts and outbox.ts: frames cut anywhere reassemble exactly; bad lengths are protocol errors
 * before any allocation; a turn's pairs leave in one write. Property tests use the seeded PRNG of spec/helpers, so a
 * failing seed can be replayed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SpoolError } from '../../../lib/errors.js';
import { encodeFrame, encodeFrames, FrameDecoder } from '../../../lib/queue/remote/frame.js';
import { Outbox } from '../../../lib/queue/remote/outbox.js';
import { prng } from '../../helpers/child.js';

/** Random payloads: mostly small, some empty-ish, some large; JSON-ish text with multi-byte characters. */
function randomPayloads(rand: () => number, count: number): string[] {
  const alphabet = ['a', 'z', '0', '"', '\\', 'é', '中', '😀', ',', '[', ']'];
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const roll = rand();
    const len = roll < 0.1 ? 1 : roll < 0.8 ? 1 + Math.floor(rand() * 60) : roll < 0.97 ? 100 + Math.floor(rand() * 2_000) : 70_000;
    let s = '';
    for (let j = 0; j < len; j++) s += alphabet[Math.floor(rand() * alphabet.length)];
    out.push(s);
  }
  return out;
}

/** Cuts `buf` into chunks at random points: many 1..7-byte pieces (splits inside length fields), some large. */
function randomSplit(rand: () => number, buf: Buffer): Buffer[] {
  const chunks: Buffer[] = [];
  for (let off = 0; off < buf.length; ) {
    const roll = rand();
    const n = roll < 0.3 ? 1 + Math.floor(rand() * 7) : roll < 0.8 ? 1 + Math.floor(rand() * 300) : 1 + Math.floor(rand() * 100_000);
    // Copy, as a socket hands over fresh chunks: views of one big buffer could hide a decoder reading past its chunk.
    chunks.push(Buffer.from(buf.subarray(off, off + n)));
    off += n;
  }
  return chunks;
}

describe('FrameDecoder', () => {
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]) {
    it(`reassembles exactly the frames of a stream split at random points (seed ${seed})`, () => {
      const rand = prng(seed);
      const payloads = randomPayloads(rand, 200 + Math.floor(rand() * 300));
      // The stream as several writes (encodeFrames batches and single frames), the way both ends write.
      const parts: Buffer[] = [];
      for (let i = 0; i < payloads.length; ) {
        const n = 1 + Math.floor(rand() * 20);
        parts.push(n === 1 ? encodeFrame(payloads[i]!) : encodeFrames(payloads.slice(i, i + n)));
        i += n;
      }
      const stream = Buffer.concat(parts);
      const decoder = new FrameDecoder();
      const got: string[] = [];
      for (const chunk of randomSplit(rand, stream)) decoder.push(chunk, (p) => got.push(p.toString('utf8')));
      assert.equal(decoder.buffered, 0, 'a whole stream leaves nothing buffered');
      assert.equal(got.length, payloads.length);
      assert.deepEqual(got, payloads);
    });
  }

  it('hands out many frames from one chunk, and waits on a partial one until its last byte', () => {
    const frames = encodeFrames(['[1]', '[2,"x"]', '[3,{"a":1}]']);
    const decoder = new FrameDecoder();
    const got: string[] = [];
    decoder.push(frames.subarray(0, frames.length - 1), (p) => got.push(p.toString()));
    assert.deepEqual(got, ['[1]', '[2,"x"]']);
    assert.equal(decoder.buffered, 4 + '[3,{"a":1}]'.length - 1);
    decoder.push(frames.subarray(frames.length - 1), (p) => got.push(p.toString()));
    assert.deepEqual(got, ['[1]', '[2,"x"]', '[3,{"a":1}]']);
  });

  it('refuses a length over the limit as ERR_PROTOCOL, before reading its payload, and stays refused', () => {
    const decoder = new FrameDecoder(1_000);
    const header = Buffer.alloc(4);
    header.writeUInt32LE(0xffff_fff0, 0);
    let frames = 0;
    // Even a chunk of only the length (no payload yet) is refused at once: nothing waits for 4 GiB to arrive.
    assert.throws(() => decoder.push(header, () => frames++), (err: unknown) => err instanceof SpoolError && err.code === 'ERR_PROTOCOL');
    assert.throws(() => decoder.push(encodeFrame('[1]'), () => frames++), { code: 'ERR_PROTOCOL' });
    assert.equal(frames, 0);
  });

  it('refuses a length over the limit that arrives a byte at a time', () => {
    const decoder = new FrameDecoder(1_000);
    const header = Buffer.alloc(4);
    header.writeUInt32LE(1_001, 0);
    decoder.push(header.subarray(0, 1), () => assert.fail('no frame'));
    decoder.push(header.subarray(1, 3), () => assert.fail('no frame'));
    assert.throws(() => decoder.push(header.subarray(3), () => assert.fail('no frame')), { code: 'ERR_PROTOCOL' });
  });

  it('accepts a frame of exactly the limit and refuses a frame of length 0', () => {
    const ok = new FrameDecoder(10);
    const got: string[] = [];
    ok.push(encodeFrame('0123456789'), (p) => got.push(p.toString()));
    assert.deepEqual(got, ['0123456789']);
    const zero = Buffer.alloc(4);
    assert.throws(() => new FrameDecoder(10).push(zero, () => undefined), { code: 'ERR_PROTOCOL' });
  });
});

describe('Outbox', () => {
  const decodeAll = (writes: Buffer[]): unknown[] => {
    const decoder = new FrameDecoder();
    const out: unknown[] = [];
    for (const w of writes) decoder.push(w, (p) => out.push(JSON.parse(p.toString())));
    return out;
  };

  it('writes the pairs pushed in one turn as one message in one write, in push order', async () => {
    const writes: Buffer[] = [];
    const outbox = new Outbox(3, { write: (b) => writes.push(b), reject: () => assert.fail('nothing rejected') });
    for (let i = 1; i <= 1_000; i++) outbox.push(i, { n: i });
    assert.equal(writes.length, 0, 'nothing is written during the turn');
    await Promise.resolve();
    await new Promise((r) => setImmediate(r));
    assert.equal(writes.length, 1);
    const [msg] = decodeAll(writes) as [[number, unknown[]]];
    assert.equal(msg[0], 3);
    assert.equal(msg[1].length, 2_000);
    assert.deepEqual(msg[1].slice(0, 4), [1, { n: 1 }, 2, { n: 2 }]);
    assert.deepEqual(msg[1].slice(-2), [1_000, { n: 1_000 }]);
  });

  it('fails only the pair JSON cannot encode, and only the pair over the limit alone; the rest go in one write', async () => {
    const writes: Buffer[] = [];
    const rejected: Array<[number, string]> = [];
    const outbox = new Outbox(4, { write: (b) => writes.push(b), reject: (k, e) => rejected.push([k, e.code]) }, 200);
    outbox.push(1, 'a');
    outbox.push(2, 10n); // a BigInt
    outbox.push(3, 'x'.repeat(500));
    for (let i = 4; i <= 40; i++) outbox.push(i, `value-${i}`); // more than one 200-byte frame holds
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(rejected, [[2, 'ERR_INVALID_ARG'], [3, 'ERR_TOO_LARGE']]);
    assert.equal(writes.length, 1, 'several frames, one write');
    const msgs = decodeAll(writes) as Array<[number, unknown[]]>;
    assert.ok(msgs.length > 1, `${msgs.length} frame(s)`);
    const flat = msgs.flatMap((m) => m[1]);
    const keys = flat.filter((_, i) => i % 2 === 0);
    assert.deepEqual(keys, [1, ...Array.from({ length: 37 }, (_, i) => i + 4)]);
    for (const w of msgs) assert.ok(JSON.stringify(w).length <= 200);
  });

  it('drops what was not written when closed, and ignores later pushes', async () => {
    const writes: Buffer[] = [];
    const outbox = new Outbox(3, { write: (b) => writes.push(b), reject: () => undefined });
    outbox.push(1, 1);
    outbox.close();
    outbox.push(2, 2);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(writes, []);
  });
});
