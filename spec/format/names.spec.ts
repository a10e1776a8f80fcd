import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  INDEX_FILE,
  LOG_DIR,
  MANIFEST_FILE,
  QUARANTINE_DIR,
  isTempFileName,
  parseSegmentFileName,
  quarantineFileName,
  segmentFileName,
} from '../../lib/format/names.js';

describe('names', () => {
  it('names a segment by its id in 20 zero-padded digits', () => {
    assert.equal(segmentFileName(1), '00000000000000000001.seg');
    assert.equal(segmentFileName(1234567), '00000000000001234567.seg');
    assert.equal(segmentFileName(Number.MAX_SAFE_INTEGER), '00009007199254740991.seg');
  });

  it('parses what it names', () => {
    for (const id of [0, 1, 30, 4096, 2 ** 32, Number.MAX_SAFE_INTEGER]) {
      assert.equal(parseSegmentFileName(segmentFileName(id)), id);
    }
  });

  it('sorts segment names in log order as plain strings', () => {
    const ids = [1, 9, 10, 88, 100, 2 ** 33, 7];
    const byName = ids.map(segmentFileName).sort().map((n) => parseSegmentFileName(n));
    assert.deepEqual(byName, [...ids].sort((a, b) => a - b));
  });

  const notSegments = [
    '1.seg',
    '0000000000000000001.seg',
    '000000000000000000001.seg',
    '00000000000000000001.seg.tmp',
    '00000000000000000001.SEG',
    '00000000000000000001.segx',
    'x0000000000000000001.seg',
    '0000000000000000000a.seg',
    ' 00000000000000000001.seg',
    '../00000000000000000001.seg',
    'index',
    '',
  ];
  for (const name of notSegments) {
    it(`does not take ${JSON.stringify(name)} for a segment`, () => {
      assert.equal(parseSegmentFileName(name), undefined);
    });
  }

  it('refuses a 20-digit id past the safe integers', () => {
    assert.equal(parseSegmentFileName('00009007199254740992.seg'), undefined);
    assert.equal(parseSegmentFileName('99999999999999999999.seg'), undefined);
  });

  it('recognises temp files by their suffix only', () => {
    assert.equal(isTempFileName('index.tmp'), true);
    assert.equal(isTempFileName('00000000000000000001.seg.tmp'), true);
    assert.equal(isTempFileName('QUEUE.tmp'), true);
    assert.equal(isTempFileName('index'), false);
    assert.equal(isTempFileName('tmp'), false);
    assert.equal(isTempFileName('x.tmp.seg'), false);
  });

  it('names quarantine files by segment and offset', () => {
    assert.equal(quarantineFileName(30, 4008), '00000000000000000030-4008.bad');
    assert.equal(quarantineFileName(1, 64), '00000000000000000001-64.bad');
  });

  it('names the fixed files as the grammar says', () => {
    assert.deepEqual([MANIFEST_FILE, INDEX_FILE, LOG_DIR, QUARANTINE_DIR], ['QUEUE', 'index', 'log', 'quarantine']);
  });
});
