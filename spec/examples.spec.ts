/**
 * The examples are part of the product: each is run as a user would (node dist/examples/x.js, in a fresh
 * working directory, since they write ./spool-data) and must exit 0 and print what it promises.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { tempDir } from './helpers/tmp.js';

const run = promisify(execFile);
const example = (name: string): string => fileURLToPath(new URL(`../examples/${name}.js`, import.meta.url));

const CASES: Array<[string, string[], RegExp[]]> = [
  ['quickstart', [], [/completed: hello, Ada/, /completed: hello, Linus/, /completed: 3/]],
  ['worker-threads', [], [/2000 emails sent by 2 threads × 50/, /messageId/]],
  ['retries-and-dead-letters', [], [/ok: completed after 3 attempts/, /dead letter payments:\d+: \{"card":"declined"\}/, /dead letter payments:\d+: \{"card":"flaky"/]],
  ['graceful-shutdown', ['--self-test'], [/SIGTERM: finishing running jobs/, /closed cleanly: \d+ done, \d+ waiting for next time, 0 active/]],
  ['encrypted-queue', [], [/plaintext on disk\? no/, /wrong key: ERR_DECRYPT/, /very private/]],
];

describe('examples', () => {
  for (const [name, args, expected] of CASES) {
    it(`${name} runs and prints what it promises`, async (t) => {
      const cwd = tempDir(t);
      const { stdout } = await run(process.execPath, [example(name), ...args], { cwd, timeout: 120_000 });
      for (const re of expected) assert.match(stdout, re);
    });
  }
});
