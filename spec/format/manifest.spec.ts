import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { crc32 } from '../../lib/format/crc32.js';
import { MANIFEST_VERSION, decodeManifest, encodeManifest, type ManifestBody } from '../../lib/format/manifest.js';

const BODY: ManifestBody = { maxSegmentBytes: 8192, encrypted: true, createdAt: 1_700_000_000_000 };

/** A manifest with an arbitrary JSON body text and a correct crc. */
function withBody(json: string): Buffer {
  const body = Buffer.from(json, 'utf8');
  const buf = Buffer.alloc(12 + body.length + 4);
  buf.write('SPQM', 0, 'latin1');
  buf.writeUInt16LE(MANIFEST_VERSION, 4);
  buf.writeUInt32LE(body.length, 8);
  body.copy(buf, 12);
  buf.writeUInt32LE(crc32(buf, 0, 12 + body.length), 12 + body.length);
  return buf;
}

describe('manifest', () => {
  it('round-trips its body', () => {
    assert.deepEqual(decodeManifest(encodeManifest(BODY), 'QUEUE'), BODY);
  });

  it('keeps extra body fields (the key checks ride along)', () => {
    const body = { ...BODY, keyChecks: { 1: 'ab'.repeat(16) } };
    assert.deepEqual(decodeManifest(encodeManifest(body), 'QUEUE'), body);
  });

  it('lays out magic, version, length, JSON and crc', () => {
    const buf = encodeManifest(BODY);
    const json = JSON.stringify(BODY);
    assert.equal(buf.toString('latin1', 0, 4), 'SPQM');
    assert.equal(buf.readUInt16LE(4), 1);
    assert.equal(buf.readUInt16LE(6), 0);
    assert.equal(buf.readUInt32LE(8), json.length);
    assert.equal(buf.toString('utf8', 12, 12 + json.length), json);
    assert.equal(buf.length, 12 + json.length + 4);
    assert.equal(buf.readUInt32LE(12 + json.length), crc32(buf, 0, 12 + json.length));
  });

  it('refuses a bad magic or a file too short to hold one with ERR_NOT_A_LOG', () => {
    const buf = encodeManifest(BODY);
    buf[0] = 0x58;
    assert.throws(() => decodeManifest(buf, 'QUEUE'), { code: 'ERR_NOT_A_LOG' });
    assert.throws(() => decodeManifest(Buffer.alloc(0), 'QUEUE'), { code: 'ERR_NOT_A_LOG' });
    assert.throws(() => decodeManifest(Buffer.from('SPQM'), 'QUEUE'), { code: 'ERR_NOT_A_LOG' });
  });

  it('refuses an unknown version with ERR_UNSUPPORTED_VERSION', () => {
    const buf = encodeManifest(BODY);
    buf.writeUInt16LE(2, 4);
    assert.throws(() => decodeManifest(buf, 'QUEUE'), { code: 'ERR_UNSUPPORTED_VERSION', message: /version 2/ });
  });

  it('refuses a flipped byte anywhere after the version with ERR_CORRUPT_RECORD', () => {
    const good = encodeManifest(BODY);
    for (let i = 6; i < good.length; i++) {
      const buf = Buffer.from(good);
      buf[i] ^= 0x01;
      assert.throws(() => decodeManifest(buf, 'QUEUE'), { code: 'ERR_CORRUPT_RECORD' }, `byte ${i}`);
    }
  });

  it('refuses a truncated or extended file with ERR_CORRUPT_RECORD', () => {
    const good = encodeManifest(BODY);
    assert.throws(() => decodeManifest(good.subarray(0, good.length - 1), 'QUEUE'), { code: 'ERR_CORRUPT_RECORD' });
    assert.throws(() => decodeManifest(Buffer.concat([good, Buffer.alloc(1)]), 'QUEUE'), { code: 'ERR_CORRUPT_RECORD' });
  });

  const malformed: Array<[string, string]> = [
    ['a string maxSegmentBytes', '{"maxSegmentBytes":"8192","encrypted":false,"createdAt":1}'],
    ['a fractional maxSegmentBytes', '{"maxSegmentBytes":1.5,"encrypted":false,"createdAt":1}'],
    ['a missing encrypted flag', '{"maxSegmentBytes":8192,"createdAt":1}'],
    ['a JSON null body', 'null'],
    ['a JSON array body', '[1,2]'],
    ['a body that is not JSON', '{"maxSegmentBytes":8192,'],
  ];
  for (const [what, json] of malformed) {
    it(`refuses ${what} with ERR_CORRUPT_RECORD even when the crc matches`, () => {
      assert.throws(() => decodeManifest(withBody(json), 'QUEUE'), { code: 'ERR_CORRUPT_RECORD' });
    });
  }
});
