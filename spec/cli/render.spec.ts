import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { flagNames, humanPayload, isText, MAX_HEX_BYTES, MAX_TEXT_CHARS } from '../../cli/render.js';
import { memoryIo, reportError, runGuarded } from '../../cli/io.js';
import { SpoolError } from '../../lib/index.js';
import { runVerify } from '../../cli/commands/verify.js';

const data = (bytes: Buffer) => ({ kind: 'data' as const, bytes });

describe('rendering payloads', () => {
  const TEXT: Array<[string, Buffer, boolean]> = [
    ['ascii', Buffer.from('hello'), true],
    ['json with newlines and tabs', Buffer.from('{\n\t"a": 1\r\n}'), true],
    ['multi-byte utf8', Buffer.from('héllo ✓ 日本'), true],
    ['empty', Buffer.alloc(0), true],
    ['a NUL byte', Buffer.from('a\0b'), false],
    ['an escape character', Buffer.from('\u001b[31m'), false],
    ['a C1 control', Buffer.from('a\u0085b'), false],
    ['invalid utf8', Buffer.from([0x68, 0xc3, 0x28]), false],
  ];
  for (const [what, bytes, text] of TEXT) {
    it(`treats ${what} as ${text ? 'text' : 'binary'}`, () => assert.equal(isText(bytes), text));
  }

  it('quotes text on one line and cuts long text with a byte count', () => {
    assert.equal(humanPayload(data(Buffer.from('a "b"\nc'))), '"a \\"b\\"\\nc"');
    const long = 'x'.repeat(MAX_TEXT_CHARS + 5);
    assert.equal(humanPayload(data(Buffer.from(long))), `"${'x'.repeat(MAX_TEXT_CHARS)}"…(+5 bytes)`);
    assert.equal(humanPayload(data(Buffer.from('y'.repeat(MAX_TEXT_CHARS)))), `"${'y'.repeat(MAX_TEXT_CHARS)}"`);
  });

  it('shows binary as hex, cut after MAX_HEX_BYTES', () => {
    assert.equal(humanPayload(data(Buffer.from([0, 0xff]))), 'hex:00ff');
    const big = Buffer.alloc(MAX_HEX_BYTES + 3, 0xab);
    assert.equal(humanPayload(data(big)), `hex:${'ab'.repeat(MAX_HEX_BYTES)}…(+3 bytes)`);
  });

  it('names flags', () => {
    assert.deepEqual([0, 1, 2, 3, 0x10].map(flagNames), ['-', 'lz4', 'aes', 'lz4,aes', '0x10']);
  });
});

describe('errors and exit codes', () => {
  const CASES: Array<[unknown, number, string]> = [
    [new SpoolError('ERR_NOT_A_LOG', 'x is not a queue'), 2, 'spoolq: ERR_NOT_A_LOG: x is not a queue\n'],
    [new SpoolError('ERR_DECRYPT', 'wrong key'), 2, 'spoolq: ERR_DECRYPT: wrong key\n'],
    [new SpoolError('ERR_CORRUPT_RECORD', 'manifest checksum mismatch'), 1, 'spoolq: ERR_CORRUPT_RECORD: manifest checksum mismatch\n'],
  ];
  for (const [err, code, first] of CASES) {
    it(`prints ${(err as SpoolError).code} as 'spoolq: <code>: <message>' and exits ${code}`, () => {
      const { io, stdout, stderr } = memoryIo();
      assert.equal(reportError(io, err), code);
      assert.equal(stdout.text, '');
      assert.ok(stderr.text.startsWith(first), stderr.text);
    });
  }

  it('turns an error thrown by a command called in-process into its exit code', (t) => {
    const { io, stdout, stderr } = memoryIo();
    const dir = `/nonexistent-${process.pid}-${t.name.length}`;
    assert.equal(runGuarded(io, () => runVerify({ dir, keyFile: undefined, json: false }, io)), 2);
    assert.equal(stdout.text, '');
    assert.match(stderr.text, /^spoolq: ERR_NOT_A_LOG: \/nonexistent-\d+-\d+ is not a spoolq queue directory/);
  });

  it('shows the stack of an error that is not a SpoolError (a bug) and exits 2', () => {
    const { io, stderr } = memoryIo();
    assert.equal(reportError(io, new TypeError('boom')), 2);
    assert.match(stderr.text, /^spoolq: internal error: TypeError: boom\n\s+at /);
  });
});
