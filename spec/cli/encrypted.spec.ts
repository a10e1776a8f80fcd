import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { Log } from '../../lib/index.js';
import { tempDir } from '../helpers/tmp.js';
import { ndjson, runCli, testKey, writeKeyFile, writeLog } from '../helpers/cli.js';

const KEY_A = testKey(0xa1);
const KEY_B = testKey(0xb2);
const secrets = (from: number, n: number) =>
  Array.from({ length: n }, (_, i) => ({ type: 1, payload: Buffer.from(`secret-${from + i}`) }));

interface DumpRow {
  seq: number;
  keyId: number;
  flags: number;
  encrypted: boolean;
  encoding: string;
  payload: string | null;
  error?: { code: string };
}

describe('spoolq on an encrypted log', () => {
  it('shows payloads with the right key, marks them encrypted without one, and refuses a wrong key', async (t) => {
    const root = tempDir(t);
    const dir = path.join(root, 'q');
    await writeLog(dir, secrets(0, 3), { encryption: { key: KEY_A } });
    const right = writeKeyFile(root, 'right.key', `  ${KEY_A.toString('hex')}\n`);
    const wrong = writeKeyFile(root, 'wrong.key', KEY_B); // raw 32 bytes

    const [withKey, noKey, noKeyHuman, wrongKey, wrongStats] = await Promise.all([
      runCli(['dump', dir, '--json', '--key-file', right]),
      runCli(['dump', dir, '--json']),
      runCli(['dump', dir, '--limit', '1']),
      runCli(['dump', dir, '--key-file', wrong]),
      runCli(['stats', dir, '--key-file', wrong]),
    ]);

    assert.equal(withKey.code, 0, withKey.stderr);
    assert.equal(withKey.stderr, '');
    const shown = ndjson<DumpRow>(withKey.stdout);
    assert.deepEqual(shown.map((r) => r.payload), ['secret-0', 'secret-1', 'secret-2']);
    assert.deepEqual(shown.map((r) => [r.keyId, r.flags, r.encrypted, r.encoding]), Array(3).fill([1, 2, true, 'utf8']));

    assert.equal(noKey.code, 0, noKey.stderr);
    const hidden = ndjson<DumpRow>(noKey.stdout);
    assert.deepEqual(hidden.map((r) => [r.seq, r.encoding, r.payload]), [[1, 'encrypted', null], [2, 'encrypted', null], [3, 'encrypted', null]]);
    assert.equal(noKey.stderr, 'spoolq: note: 3 encrypted payload(s) not shown; pass --key-file to decrypt them\n');
    assert.equal(noKeyHuman.code, 0);
    assert.match(noKeyHuman.stdout, /^seq=1 type=1 .* flags=aes payload=<encrypted with key 1; pass --key-file to see it>\n$/);

    for (const run of [wrongKey, wrongStats]) {
      assert.equal(run.code, 2);
      assert.equal(run.stdout, '');
      assert.match(run.stderr, /^spoolq: ERR_DECRYPT: encryption key 1 is not the key this log was written with\n/);
    }
  });

  it('reads rotated keys from id:hex lines, and reports records whose key id is missing (exit 1)', async (t) => {
    const root = tempDir(t);
    const dir = path.join(root, 'q');
    await writeLog(dir, secrets(0, 2), { encryption: { key: KEY_A } });
    const rotated = await Log.open(dir, { encryption: { keys: [{ id: 1, key: KEY_A }, { id: 2, key: KEY_B }], currentKeyId: 2 } });
    await Promise.all(secrets(2, 2).map((r) => rotated.append(r.type, r.payload)));
    await rotated.close();
    const both = writeKeyFile(root, 'both.key', `# rotated\n1:${KEY_A.toString('hex')}\n\n2:${KEY_B.toString('hex')}\n`);
    const onlyA = writeKeyFile(root, 'a.key', KEY_A.toString('hex'));

    const [all, partial, verifyPartial] = await Promise.all([
      runCli(['dump', dir, '--json', '--key-file', both]),
      runCli(['dump', dir, '--json', '--key-file', onlyA]),
      runCli(['verify', dir, '--json', '--key-file', onlyA]),
    ]);
    assert.equal(all.code, 0, all.stderr);
    assert.deepEqual(
      ndjson<DumpRow>(all.stdout).map((r) => [r.keyId, r.payload]),
      [[1, 'secret-0'], [1, 'secret-1'], [2, 'secret-2'], [2, 'secret-3']],
    );

    assert.equal(partial.code, 1);
    const rows = ndjson<DumpRow>(partial.stdout);
    assert.deepEqual(rows.map((r) => [r.encoding, r.payload, r.error?.code]), [
      ['utf8', 'secret-0', undefined],
      ['utf8', 'secret-1', undefined],
      ['error', null, 'ERR_KEY_MISSING'],
      ['error', null, 'ERR_KEY_MISSING'],
    ]);
    assert.equal(partial.stderr, 'spoolq: 2 payload(s) could not be decoded (see their lines)\n');

    assert.equal(verifyPartial.code, 1);
    const report = JSON.parse(verifyPartial.stdout);
    assert.equal(report.ok, false);
    assert.deepEqual(report.decodeErrors.map((e: { seq: number; code: string }) => [e.seq, e.code]), [
      [3, 'ERR_KEY_MISSING'],
      [4, 'ERR_KEY_MISSING'],
    ]);
  });

  it('refuses a malformed key file with exit 2, without echoing key material', async (t) => {
    const root = tempDir(t);
    const dir = path.join(root, 'q');
    await writeLog(dir, secrets(0, 1), { encryption: { key: KEY_A } });
    const short = KEY_A.toString('hex').slice(1);
    const bad = writeKeyFile(root, 'bad.key', short);
    const run = await runCli(['verify', dir, '--key-file', bad]);
    assert.equal(run.code, 2);
    assert.equal(run.stdout, '');
    assert.match(run.stderr, /^spoolq: ERR_INVALID_ARG: key file .*bad\.key holds neither 32 raw bytes nor a key of 64 hex characters/);
    assert.ok(!run.stderr.includes(short));
  });
});
