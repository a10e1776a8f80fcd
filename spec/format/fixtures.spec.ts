/**
 * Format fixtures: logs written by format version 1, committed under spec/fixtures/. Every later build must still
 * read them exactly; a layout change bumps the version and adds a fixture beside these.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Log } from '../../lib/log/log.js';
import { readLog } from '../../lib/log/read-log.js';
import { verifyLog } from '../../lib/log/verify.js';
import { tempDir } from '../helpers/tmp.js';

const root = fileURLToPath(new URL('../../../spec/fixtures/', import.meta.url));
const key = Buffer.alloc(32);
for (let i = 0; i < 32; i++) key[i] = i * 7 + 1;
const expected = (i: number): string => `fixture record ${i} `.repeat(1 + (i % 9));

for (const [name, encryption] of [['v1-plain', undefined], ['v1-lz4-aes', { key }]] as const) {
  describe(`format fixture ${name}`, () => {
    it('verifies clean without being modified', () => {
      const before = snapshot(path.join(root, name));
      const report = verifyLog(path.join(root, name), { encryption });
      assert.equal(report.ok, true);
      assert.equal(report.records, 60);
      assert.deepEqual(snapshot(path.join(root, name)), before);
    });

    it('reads every payload exactly', () => {
      const got: string[] = [];
      readLog(path.join(root, name), { encryption, onEntry: (e) => void got.push(`${e.type}:${e.payload().toString()}`) });
      assert.deepEqual(got, Array.from({ length: 60 }, (_, i) => `${1 + (i % 5)}:${expected(i)}`));
    });

    it('opens for writing from its checkpoint and appends after it', async (t) => {
      const dir = tempDir(t);
      fs.cpSync(path.join(root, name), dir, { recursive: true });
      const log = await Log.open(dir, { encryption });
      let after = 0;
      const { state } = log.replay(() => void after++);
      assert.equal(state?.toString(), 'fixture state');
      assert.equal(after, 0);
      assert.equal((await log.append(1, Buffer.from('new'))).seq, 61);
      await log.close();
    });
  });
}

function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const rel of fs.readdirSync(dir, { recursive: true }) as string[]) {
    const file = path.join(dir, rel);
    if (fs.statSync(file).isFile()) out[rel] = fs.readFileSync(file).toString('base64');
  }
  return out;
}
