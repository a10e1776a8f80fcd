#!/usr/bin/env node
/**
 * The `spoolq` command line: wires the commands of cli/commands/ into yargs and turns the outcome into the
 * process's exit code. Owns argument parsing, --help and --version, and usage errors; each command owns its
 * own work and output (see command.ts). Every command only reads the queue: no lock, no writes.
 *
 * Exit codes (io.ts): 0 ok, 1 problems found, 2 could not run (bad usage, not a queue, bad or wrong key).
 * The exit code is set on process.exitCode rather than by process.exit(), so output still in flight to a pipe
 * is written before the process ends.
 */
import * as fs from 'node:fs';
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import type { CliCommand } from './command.js';
import { dumpCommand } from './commands/dump.js';
import { statsCommand } from './commands/stats.js';
import { verifyCommand } from './commands/verify.js';
import { EXIT_CODES_HELP, EXIT_OK, reportError, runGuarded, usageError, type CliIo } from './io.js';
import { KEY_FILE_HELP } from './key-file.js';

/**
 * Parses `args` (without node and the script), runs the command named, and resolves with the exit code. Commands
 * write to `io`; yargs prints --help and --version to the console itself. Not exported: importing this module runs
 * the CLI, so tests spawn it, or call a command's `run` directly.
 */
async function main(args: string[], io: CliIo): Promise<number> {
  let exitCode = EXIT_OK;
  const parser = yargs(args)
    .scriptName('spoolq')
    .usage('$0 <command> <queue-dir> [options]\n\nInspect a spoolq queue directory. Every command is read-only.')
    .strict()
    .demandCommand(1, 'name a command: verify, dump or stats')
    .recommendCommands()
    .exitProcess(false)
    .fail((message, err) => {
      // Thrown, not just reported: with exitProcess(false) yargs would otherwise go on to run the handler.
      // Handlers never throw (runGuarded), so an error here is yargs' own (YError) or a bug.
      if (err && err.name !== 'YError') throw err;
      let text = message ?? err?.message ?? 'bad usage';
      if (text.startsWith('Did you mean')) text = `unknown command '${args[0]}'. ${text}`;
      throw usageError(text);
    })
    .help()
    .alias('help', 'h')
    .version(packageVersion())
    .epilogue(`${KEY_FILE_HELP}\n\n${EXIT_CODES_HELP}`)
    .wrap(Math.min(110, process.stdout.columns ?? 100));
  const register = <A>(c: CliCommand<A>): Argv =>
    parser.command(c.command, c.describe, c.builder, (argv) => {
      exitCode = runGuarded(io, () => c.run(c.args(argv), io));
    });
  register(verifyCommand);
  register(dumpCommand);
  register(statsCommand);
  try {
    await parser.parseAsync();
  } catch (err) {
    return reportError(io, err);
  }
  return exitCode;
}

function packageVersion(): string {
  try {
    // dist/cli/main.js → package.json at the package root.
    const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    // Only --version needs it; a missing or odd package.json must not stop the inspection commands.
    return 'unknown';
  }
}

// `spoolq dump … | head` closes the pipe early: stop quietly instead of dying on EPIPE with a stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? EXIT_OK);
  throw err;
});

process.exitCode = await main(hideBin(process.argv), { stdout: process.stdout, stderr: process.stderr });
