import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runCli } from '../helpers/cli.js';

const HELP: Array<[string, string[]]> = [
  ['verify', ['--key-file', '--json', 'Examples:', 'spoolq verify ./data/emails', 'Key file (--key-file)', 'Exit codes']],
  ['dump', ['--key-file', '--json', '--from', '--limit', 'Examples:', 'spoolq dump ./data/emails --from 1000 --limit 10']],
  ['stats', ['--key-file', '--json', 'Examples:', 'spoolq stats ./data/emails']],
];

describe('spoolq (command line)', () => {
  for (const [command, mentions] of HELP) {
    it(`prints help for ${command} with its options and examples, exit 0`, async () => {
      const run = await runCli([command, '--help']);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stderr, '');
      assert.ok(run.stdout.startsWith(`spoolq ${command} <queue-dir>\n`), run.stdout);
      for (const text of mentions) assert.ok(run.stdout.includes(text), `help of ${command} mentions ${text}`);
    });
  }

  it('lists every command in the top-level help, exit 0', async () => {
    const run = await runCli(['--help']);
    assert.equal(run.code, 0, run.stderr);
    for (const command of ['verify', 'dump', 'stats']) {
      assert.match(run.stdout, new RegExp(`spoolq ${command} <queue-dir>`));
    }
  });

  const USAGE: Array<[string, string[], RegExp]> = [
    ['no command', [], /^spoolq: ERR_INVALID_ARG: name a command: verify, dump or stats\n/],
    ['an unknown command', ['veryfy', 'q'], /^spoolq: ERR_INVALID_ARG: unknown command 'veryfy'\. Did you mean verify\?\n/],
    ['an unknown option', ['stats', 'q', '--bogus'], /^spoolq: ERR_INVALID_ARG: Unknown argument: bogus\n/],
    ['a missing queue dir', ['verify'], /^spoolq: ERR_INVALID_ARG: Not enough non-option arguments/],
  ];
  for (const [what, args, stderr] of USAGE) {
    it(`exits 2 without running anything on ${what}`, async () => {
      const run = await runCli(args);
      assert.equal(run.code, 2);
      assert.equal(run.stdout, '');
      assert.match(run.stderr, stderr);
    });
  }
});
