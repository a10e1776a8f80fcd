/**
 * lib/errors.ts: every error code is documented in the README's error list (the codes are the API).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { describe, it } from 'node:test';
import { ERROR_CODES, SpoolError } from '../lib/index.js';

const read = (file: string): string => fs.readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8');

describe('error codes', () => {
  it('names every code of lib/errors.ts in the README error list', () => {
    const source = read('lib/errors.ts');
    const declared = [...source.matchAll(/^\s+(ERR_[A-Z_]+): '\1',$/gm)].map((m) => m[1]!);
    assert.deepEqual(declared, Object.keys(ERROR_CODES), 'the codes read from lib/errors.ts are not ERROR_CODES');
    const readme = read('README.md');
    const start = readme.indexOf('Errors are `SpoolError`s');
    assert.ok(start >= 0, 'the README has no error list');
    const end = readme.indexOf('\n## ', start);
    const list = readme.slice(start, end < 0 ? undefined : end);
    const missing = declared.filter((code) => !list.includes(`\`${code}\``));
    assert.deepEqual(missing, [], `codes missing from the README error list: ${missing.join(', ')}`);
  });

  it('gives each code its "when…" comment in lib/errors.ts', () => {
    const source = read('lib/errors.ts');
    for (const code of Object.keys(ERROR_CODES)) {
      assert.match(source, new RegExp(`\\*/\\n\\s+${code}: '${code}'`), `${code} has no doc comment`);
    }
    assert.equal(new SpoolError('ERR_OPTIONS_CONFLICT', 'x').code, 'ERR_OPTIONS_CONFLICT');
  });
});
