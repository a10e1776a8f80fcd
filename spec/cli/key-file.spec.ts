import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { parseKeyFile, readKeyFile } from '../../cli/key-file.js';
import { tempDir } from '../helpers/tmp.js';
import { testKey } from '../helpers/cli.js';

const A = testKey(0x11);
const B = testKey(0x22);
const hexA = A.toString('hex');
const hexB = B.toString('hex');

describe('key files', () => {
  const GOOD: Array<[string, string | Buffer, unknown]> = [
    ['32 raw bytes', A, { key: A }],
    ['64 hex characters', hexA, { key: A }],
    ['hex with surrounding whitespace', `\n  ${hexA}  \r\n`, { key: A }],
    ['upper-case hex', hexA.toUpperCase(), { key: A }],
    ['a comment before the key', `# emails queue\n${hexA}\n`, { key: A }],
    ['id:hex lines with comments and blanks', `# rotated\n1:${hexA}\n\n 2 : ${hexB}\n`, { keys: [{ id: 1, key: A }, { id: 2, key: B }] }],
    ['one id:hex line', `7:${hexB}`, { keys: [{ id: 7, key: B }] }],
  ];
  for (const [what, content, want] of GOOD) {
    it(`reads ${what}`, () => {
      assert.deepEqual(parseKeyFile(Buffer.from(content), 'k'), want);
    });
  }

  const BAD: Array<[string, string | Buffer, RegExp]> = [
    ['an empty file', '\n\n', /^key file k is empty$/],
    ['63 hex characters', hexA.slice(1), /^key file k holds neither 32 raw bytes nor a key of 64 hex characters \(found 63 bytes\)$/],
    ['31 raw bytes', A.subarray(1), /holds neither 32 raw bytes .* \(found 31 bytes of binary data\)$/],
    ['binary that is not 32 bytes', Buffer.alloc(33, 1), /\(found 33 bytes of binary data\)$/],
    ['two bare keys', `${hexA}\n${hexB}`, /^key file k, line 1: expected 'id:hex' \(one key per line\)$/],
    ['key id 0', `0:${hexA}`, /^key file k, line 1: key id must be 1\.\.255, got 0$/],
    ['key id 256', `1:${hexA}\n256:${hexB}`, /^key file k, line 2: key id must be 1\.\.255, got 256$/],
    ['a short key after an id', `1:${hexA.slice(2)}`, /^key file k, line 1: key 1 must be 64 hex characters \(32 bytes\)$/],
    ['a key id given twice', `3:${hexA}\n3:${hexB}`, /^key file k, line 2: key id 3 is given twice$/],
  ];
  for (const [what, content, message] of BAD) {
    it(`refuses ${what} with ERR_INVALID_ARG and no key material in the message`, () => {
      assert.throws(() => parseKeyFile(Buffer.from(content), 'k'), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'ERR_INVALID_ARG');
        assert.match(err.message, message);
        assert.ok(!err.message.includes(hexA.slice(4, 20)) && !err.message.includes(hexB.slice(4, 20)));
        return true;
      });
    });
  }

  it('refuses a key file that cannot be read, naming the system error', (t) => {
    const file = path.join(tempDir(t), 'missing.key');
    assert.throws(() => readKeyFile(file), { code: 'ERR_INVALID_ARG', message: `cannot read key file ${file} (ENOENT)` });
  });
});
