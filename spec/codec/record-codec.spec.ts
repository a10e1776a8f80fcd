import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { KEY_BYTES, KeyRing, NONCE_BYTES, type EncryptionOptions } from '../../lib/codec/keyring.js';
import { MAX_PLAIN_BYTES, RecordCodec, type CodecOptions, type EntryMeta } from '../../lib/codec/record-codec.js';
import {
  FLAG_AES,
  FLAG_LZ4,
  MAX_PAYLOAD_BYTES,
  RECORD_HEADER_BYTES,
  checkRecord,
  encodeRecord,
  readRecordHeader,
  sealRecord,
  writeU64,
} from '../../lib/format/record.js';

const KEY_A = randomBytes(KEY_BYTES);
const KEY_B = randomBytes(KEY_BYTES);
const META: EntryMeta = { type: 7, seq: 12_345, segmentId: 12_000, epoch: 3 };
const AES_OVERHEAD = NONCE_BYTES + 16;

const CODECS: Array<{ name: string; opts: CodecOptions; lz4: boolean; aes: boolean }> = [
  { name: 'plain', opts: { compressThreshold: false }, lz4: false, aes: false },
  { name: 'lz4', opts: { compressThreshold: 0 }, lz4: true, aes: false },
  { name: 'aes', opts: { compressThreshold: false, encryption: { key: KEY_A } }, lz4: false, aes: true },
  { name: 'lz4+aes', opts: { compressThreshold: 0, encryption: { key: KEY_A } }, lz4: true, aes: true },
];

/** Text-like bytes: compressible, but not trivially. */
function compressible(size: number): Buffer {
  const words = ['queue', 'job', 'spool', 'record', 'segment', 'worker', 'lease', 'ticket', ' ', ', ', '\n'];
  const out = Buffer.alloc(size);
  let at = 0;
  let x = 12345;
  while (at < size) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    at += out.write(words[x % words.length]!, at);
  }
  return out;
}

const PAYLOADS: Array<{ name: string; bytes: Buffer; compresses: boolean }> = [
  { name: 'small', bytes: Buffer.from('{"to":"a@b.c"}'), compresses: false },
  { name: 'empty', bytes: Buffer.alloc(0), compresses: false },
  { name: 'incompressible', bytes: randomBytes(4096), compresses: false },
  { name: '1 MiB', bytes: compressible(1024 * 1024), compresses: true },
];

/** Re-seals the outer crc, so only the GCM tag can notice an edit. */
function reseal(rec: Buffer): Buffer {
  sealRecord(rec, 0);
  assert.equal(checkRecord(rec, 0, rec.length).kind, 'ok');
  return rec;
}

describe('RecordCodec', () => {
  for (const codec of CODECS) {
    for (const payload of PAYLOADS) {
      it(`round-trips a ${payload.name} payload (${codec.name})`, () => {
        const c = new RecordCodec(codec.opts);
        const rec = c.encode(META, payload.bytes);
        assert.deepEqual(checkRecord(rec, 0, rec.length), { kind: 'ok', size: rec.length });
        const h = readRecordHeader(rec, 0);
        const lz4 = codec.lz4 && payload.compresses;
        assert.equal(h.flags, (lz4 ? FLAG_LZ4 : 0) | (codec.aes ? FLAG_AES : 0));
        assert.equal(h.keyId, codec.aes ? 1 : 0);
        assert.deepEqual(
          { type: h.type, seq: h.seq, segmentId: h.segmentId, epoch: h.epoch },
          { type: META.type, seq: META.seq, segmentId: META.segmentId, epoch: META.epoch },
        );
        if (!lz4) assert.equal(rec.length, RECORD_HEADER_BYTES + payload.bytes.length + (codec.aes ? AES_OVERHEAD : 0));
        else assert.ok(rec.length < payload.bytes.length / 2, `1 MiB of text stored in ${rec.length} bytes`);
        assert.ok(rec.length <= c.maxRecordBytes(payload.bytes.length));
        assert.deepEqual(c.decode(rec, 0), payload.bytes);
        if (codec.aes && payload.bytes.length >= 16) {
          assert.equal(rec.indexOf(payload.bytes.subarray(0, 16)), -1, 'plain bytes do not appear in a sealed record');
        }
      });
    }

    it(`encodes into and decodes from the middle of a larger buffer (${codec.name})`, () => {
      const c = new RecordCodec(codec.opts);
      const plain = compressible(3000);
      const buf = Buffer.alloc(200 + c.maxRecordBytes(plain.length) + 50, 0xee);
      const size = c.encodeInto(buf, 200, META, plain);
      assert.equal(buf[199], 0xee);
      assert.equal(buf[200 + size], 0xee);
      assert.deepEqual(checkRecord(buf, 200, 200 + size), { kind: 'ok', size });
      assert.deepEqual(c.decode(buf, 200), plain);
    });

    it(`returns a payload that does not share memory with the record (${codec.name})`, () => {
      const c = new RecordCodec(codec.opts);
      const plain = Buffer.from('mutable payload bytes');
      const rec = c.encode(META, plain);
      const out = c.decode(rec, 0);
      out.fill(0);
      assert.deepEqual(c.decode(rec, 0), plain);
    });

    it(`refuses a payload over MAX_PLAIN_BYTES with ERR_TOO_LARGE (${codec.name})`, () => {
      const c = new RecordCodec(codec.opts);
      assert.throws(() => c.encode(META, Buffer.alloc(MAX_PLAIN_BYTES + 1)), { code: 'ERR_TOO_LARGE' });
    });
  }

  it('seals a payload of exactly MAX_PLAIN_BYTES into a record the framing accepts', () => {
    const c = new RecordCodec({ compressThreshold: false, encryption: { key: KEY_A } });
    const plain = Buffer.alloc(MAX_PLAIN_BYTES, 0x5a);
    const rec = c.encode(META, plain);
    assert.equal(readRecordHeader(rec, 0).length, MAX_PAYLOAD_BYTES);
    assert.deepEqual(checkRecord(rec, 0, rec.length), { kind: 'ok', size: RECORD_HEADER_BYTES + MAX_PAYLOAD_BYTES });
    assert.ok(c.decode(rec, 0).equals(plain));
  });

  it('sets the LZ4 flag only when compression makes the payload smaller', () => {
    const c = new RecordCodec({ compressThreshold: 0 });
    for (const plain of [Buffer.alloc(0), Buffer.from('x'), Buffer.from('hello'), randomBytes(100), randomBytes(10_000)]) {
      const rec = c.encode(META, plain);
      assert.equal(readRecordHeader(rec, 0).flags, 0, `${plain.length} bytes`);
      assert.equal(rec.length, RECORD_HEADER_BYTES + plain.length);
    }
    const zeros = Buffer.alloc(1000);
    const rec = c.encode(META, zeros);
    assert.equal(readRecordHeader(rec, 0).flags, FLAG_LZ4);
    assert.ok(readRecordHeader(rec, 0).length < 100);
    assert.deepEqual(c.decode(rec, 0), zeros);
  });

  it('compresses only at or above the threshold', () => {
    const c = new RecordCodec({ compressThreshold: 256 });
    assert.equal(readRecordHeader(c.encode(META, Buffer.alloc(255)), 0).flags, 0);
    assert.equal(readRecordHeader(c.encode(META, Buffer.alloc(256)), 0).flags, FLAG_LZ4);
  });

  it('never compresses when compressThreshold is false', () => {
    const c = new RecordCodec({ compressThreshold: false });
    const rec = c.encode(META, Buffer.alloc(100_000));
    assert.equal(readRecordHeader(rec, 0).flags, 0);
    assert.equal(rec.length, RECORD_HEADER_BYTES + 100_000);
  });

  it('decodes an LZ4 record with a codec that would not compress', () => {
    const plain = compressible(5000);
    const rec = new RecordCodec({ compressThreshold: 0 }).encode(META, plain);
    assert.equal(readRecordHeader(rec, 0).flags, FLAG_LZ4);
    assert.deepEqual(new RecordCodec({ compressThreshold: false }).decode(rec, 0), plain);
  });

  it('reports whether it encrypts', () => {
    assert.equal(new RecordCodec({ compressThreshold: false }).encrypted, false);
    assert.equal(new RecordCodec({ compressThreshold: false, encryption: { key: KEY_A } }).encrypted, true);
  });
});

describe('RecordCodec encryption', () => {
  const aes = (enc: EncryptionOptions, compressThreshold: number | false = false): RecordCodec =>
    new RecordCodec({ compressThreshold, encryption: enc });

  for (const threshold of [false, 0] as const) {
    const name = threshold === false ? 'aes' : 'lz4+aes';
    it(`refuses the wrong key with ERR_DECRYPT, never garbage (${name})`, () => {
      const rec = aes({ key: KEY_A }, threshold).encode(META, compressible(2000));
      assert.throws(() => aes({ key: KEY_B }, threshold).decode(rec, 0), { code: 'ERR_DECRYPT' });
    });
  }

  const regions: Array<[string, (len: number) => number]> = [
    ['nonce', () => RECORD_HEADER_BYTES + 3],
    ['first ciphertext', () => RECORD_HEADER_BYTES + NONCE_BYTES],
    ['last ciphertext', (len) => len - 17],
    ['tag', (len) => len - 1],
  ];
  for (const [region, at] of regions) {
    it(`refuses a changed ${region} byte with ERR_DECRYPT though the outer crc was re-sealed`, () => {
      const c = aes({ key: KEY_A });
      const rec = c.encode(META, Buffer.from('the job data that the key protects'));
      rec[at(rec.length)] ^= 0x01;
      assert.throws(() => c.decode(reseal(rec), 0), { code: 'ERR_DECRYPT' });
    });
  }

  const aadEdits: Array<[string, (rec: Buffer) => void]> = [
    ['seq', (rec) => writeU64(rec, 16, META.seq + 1)],
    ['segment', (rec) => writeU64(rec, 24, META.segmentId + 100)],
    ['epoch', (rec) => rec.writeUInt32LE(META.epoch + 1, 32)],
    ['type', (rec) => (rec[7] = META.type + 1)],
    ['LZ4 flag', (rec) => (rec[8] |= FLAG_LZ4)],
  ];
  for (const [field, edit] of aadEdits) {
    it(`refuses a record whose ${field} was changed in the header (AAD) with ERR_DECRYPT`, () => {
      const c = aes({ key: KEY_A });
      const rec = c.encode(META, Buffer.from('moved records must not authenticate'));
      edit(rec);
      assert.throws(() => c.decode(reseal(rec), 0), { code: 'ERR_DECRYPT' });
    });
  }

  it('refuses a sealed record too short to hold nonce and tag with ERR_DECRYPT', () => {
    const rec = encodeRecord({ ...META, flags: FLAG_AES, keyId: 1 }, Buffer.alloc(AES_OVERHEAD - 1, 1));
    assert.throws(() => aes({ key: KEY_A }).decode(rec, 0), { code: 'ERR_DECRYPT' });
  });

  it('refuses a record sealed under a key id it was not given with ERR_KEY_MISSING', () => {
    const rec = aes({ keys: [{ id: 5, key: KEY_A }] }).encode(META, Buffer.from('x'));
    assert.equal(readRecordHeader(rec, 0).keyId, 5);
    assert.throws(() => aes({ keys: [{ id: 1, key: KEY_A }] }).decode(rec, 0), { code: 'ERR_KEY_MISSING' });
    assert.throws(() => new RecordCodec({ compressThreshold: false }).decode(rec, 0), { code: 'ERR_KEY_MISSING' });
  });

  it('rotates keys: a ring {1,2} seals with key 2 and reads records of both keys', () => {
    const old = aes({ keys: [{ id: 1, key: KEY_A }] });
    const r1 = old.encode(META, Buffer.from('sealed with key 1'));
    const ring = aes({ keys: [{ id: 1, key: KEY_A }, { id: 2, key: KEY_B }] });
    const r2 = ring.encode({ ...META, seq: META.seq + 1 }, Buffer.from('sealed with key 2'));
    assert.equal(readRecordHeader(r1, 0).keyId, 1);
    assert.equal(readRecordHeader(r2, 0).keyId, 2);
    assert.deepEqual(ring.decode(r1, 0), Buffer.from('sealed with key 1'));
    assert.deepEqual(ring.decode(r2, 0), Buffer.from('sealed with key 2'));
    assert.throws(() => old.decode(r2, 0), { code: 'ERR_KEY_MISSING' });
    assert.throws(() => aes({ keys: [{ id: 2, key: KEY_B }] }).decode(r1, 0), { code: 'ERR_KEY_MISSING' });
  });

  it('seals with currentKeyId when one is given', () => {
    const ring = aes({ keys: [{ id: 1, key: KEY_A }, { id: 2, key: KEY_B }], currentKeyId: 1 });
    const rec = ring.encode(META, Buffer.from('x'));
    assert.equal(readRecordHeader(rec, 0).keyId, 1);
    assert.deepEqual(aes({ keys: [{ id: 1, key: KEY_A }] }).decode(rec, 0), Buffer.from('x'));
  });

  it('refuses a key under a known id that is not the key that sealed it with ERR_DECRYPT', () => {
    const rec = aes({ keys: [{ id: 3, key: KEY_A }] }).encode(META, Buffer.from('x'));
    assert.throws(() => aes({ keys: [{ id: 3, key: KEY_B }] }).decode(rec, 0), { code: 'ERR_DECRYPT' });
  });

  it('never repeats a nonce across 100k encodes', () => {
    const c = aes({ key: KEY_A });
    const seen = new Set<string>();
    const buf = Buffer.allocUnsafe(c.maxRecordBytes(1));
    const plain = Buffer.from([1]);
    const n = 100_000;
    for (let i = 0; i < n; i++) {
      c.encodeInto(buf, 0, { ...META, seq: i + 1 }, plain);
      seen.add(buf.toString('hex', RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + NONCE_BYTES));
    }
    assert.equal(seen.size, n);
  });

  it('gives two codecs with the same key different nonces', () => {
    const a = aes({ key: KEY_A }).encode(META, Buffer.from('x'));
    const b = aes({ key: KEY_A }).encode(META, Buffer.from('x'));
    assert.notDeepEqual(a.subarray(RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + NONCE_BYTES), b.subarray(RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + NONCE_BYTES));
    assert.notDeepEqual(a, b);
  });
});

describe('RecordCodec LZ4 framing', () => {
  const lz4Record = (stored: Buffer): Buffer => encodeRecord({ ...META, flags: FLAG_LZ4, keyId: 0 }, stored);
  const plain = new RecordCodec({ compressThreshold: false });

  it('refuses an LZ4 block that claims more than MAX_PLAIN_BYTES with ERR_CORRUPT_RECORD', () => {
    const stored = Buffer.alloc(10);
    stored.writeUInt32LE(MAX_PLAIN_BYTES + 1, 0);
    assert.throws(() => plain.decode(lz4Record(stored), 0), { code: 'ERR_CORRUPT_RECORD', message: /impossible size/ });
  });

  it('refuses an LZ4 block shorter than its size prefix with ERR_CORRUPT_RECORD', () => {
    assert.throws(() => plain.decode(lz4Record(Buffer.from([1, 2, 3])), 0), { code: 'ERR_CORRUPT_RECORD' });
  });

  it('refuses an LZ4 block that does not decode with ERR_CORRUPT_RECORD', () => {
    assert.throws(() => plain.decode(lz4Record(Buffer.from([10, 0, 0, 0, 0xff, 0xff, 0xff])), 0), { code: 'ERR_CORRUPT_RECORD' });
  });

  it('refuses an LZ4 block whose size prefix understates its content with ERR_CORRUPT_RECORD', () => {
    const good = new RecordCodec({ compressThreshold: 0 }).encode(META, Buffer.alloc(300, 7));
    const stored = Buffer.from(good.subarray(RECORD_HEADER_BYTES));
    stored.writeUInt32LE(20, 0);
    assert.throws(() => plain.decode(lz4Record(stored), 0), { code: 'ERR_CORRUPT_RECORD' });
  });
});

describe('KeyRing', () => {
  const key = randomBytes(KEY_BYTES);
  const invalid: Array<[string, unknown]> = [
    ['a 31-byte key', { key: randomBytes(31) }],
    ['a 33-byte key', { key: randomBytes(33) }],
    ['an empty key', { key: Buffer.alloc(0) }],
    ['a key given as a string', { key: 'k'.repeat(32) }],
    ['a key given as a Uint8Array', { key: new Uint8Array(32) }],
    ['no keys', { keys: [] }],
    ['keys that are not an array', { keys: { id: 1, key } }],
    ['key id 0', { keys: [{ id: 0, key }] }],
    ['key id 256', { keys: [{ id: 256, key }] }],
    ['key id -1', { keys: [{ id: -1, key }] }],
    ['key id 1.5', { keys: [{ id: 1.5, key }] }],
    ['key id "1"', { keys: [{ id: '1', key }] }],
    ['a duplicate key id', { keys: [{ id: 2, key }, { id: 2, key: randomBytes(32) }] }],
    ['a currentKeyId not among the keys', { keys: [{ id: 1, key }], currentKeyId: 2 }],
  ];
  for (const [what, opts] of invalid) {
    it(`refuses ${what} with ERR_INVALID_ARG`, () => {
      assert.throws(() => new KeyRing(opts as EncryptionOptions), { code: 'ERR_INVALID_ARG' });
      assert.throws(() => new RecordCodec({ compressThreshold: false, encryption: opts as EncryptionOptions }), { code: 'ERR_INVALID_ARG' });
    });
  }

  it('accepts key ids 1 and 255 and picks the highest as current', () => {
    const ring = new KeyRing({ keys: [{ id: 255, key }, { id: 1, key: KEY_A }] });
    assert.equal(ring.currentId, 255);
    assert.deepEqual(ring.currentKey, key);
    assert.deepEqual(ring.get(1), KEY_A);
    assert.equal(ring.get(2), undefined);
  });

  it('gives a single key the id 1', () => {
    const ring = new KeyRing({ key });
    assert.equal(ring.currentId, 1);
    assert.deepEqual(ring.get(1), key);
  });

  it('copies the keys it is given', () => {
    const mine = Buffer.from(key);
    const ring = new KeyRing({ key: mine });
    mine.fill(0);
    assert.deepEqual(ring.get(1), key);
  });

  it('counts nonces up from a random prefix', () => {
    const ring = new KeyRing({ key });
    const a = Buffer.alloc(NONCE_BYTES);
    const b = Buffer.alloc(NONCE_BYTES);
    ring.nextNonce(a, 0);
    ring.nextNonce(b, 0);
    assert.deepEqual(a.subarray(0, 8), b.subarray(0, 8));
    assert.equal(b.readUInt32LE(8), a.readUInt32LE(8) + 1);
  });
});
