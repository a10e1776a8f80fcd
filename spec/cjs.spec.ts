/**
 * spoolq from CommonJS: require('spoolq') in a real child `node file.cjs` (package.json "exports" has a require
 * condition; Node ≥ 20.19 and ≥ 22.12 require() an ES module graph that has no top-level await).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { tempDir } from './helpers/tmp.js';

const execFileAsync = promisify(execFile);
const FIXTURE = fileURLToPath(new URL('../../spec/fixtures/cjs/require-spoolq.cjs', import.meta.url));

/** Whether this Node can require() an ES module without a flag. */
function requiresEsm(): boolean {
  const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
  return major > 22 || (major === 22 && minor >= 12) || (major === 20 && minor >= 19);
}

describe('CommonJS', () => {
  it('require("spoolq") works from a .cjs file: it adds a job and reads it back', { timeout: 20_000, skip: !requiresEsm() && 'needs Node 20.19+ or 22.12+' }, async (t) => {
    const dir = tempDir(t);
    const { stdout } = await execFileAsync(process.execPath, [FIXTURE, dir], { timeout: 15_000 });
    assert.deepEqual(JSON.parse(stdout.trim()), { id: '1', name: 'hello', data: { from: 'require' }, attempts: 2, spoolError: 'function' });
  });
});
