/**
 * What every command module exports, and the options several commands share. main.ts registers each
 * CliCommand with yargs; a command's `run` can also be called directly with parsed arguments and any CliIo.
 *
 * Every command here only reads: it takes no lock and writes nothing, so it can run beside the process that
 * owns the queue and is appending to it.
 */
import type { Argv } from 'yargs';
import { KEY_FILE_HELP } from './key-file.js';
import { EXIT_CODES_HELP, usageError, type CliIo } from './io.js';

export interface CliCommand<A> {
  /** yargs command string, e.g. 'verify <queue-dir>'. */
  command: string;
  describe: string;
  builder: (y: Argv) => Argv;
  /** Picks this command's arguments out of what yargs parsed (validating them; ERR_INVALID_ARG otherwise). */
  args: (argv: Record<string, unknown>) => A;
  /** Runs the command; returns the exit code. Throws SpoolError for anything that stops it. */
  run: (args: A, io: CliIo) => number;
}

/** The arguments every command takes. */
export interface CommonArgs {
  dir: string;
  keyFile: string | undefined;
  json: boolean;
}

/** Adds <queue-dir>, --key-file and --json, and the epilogue: key file format, exit codes, `exitNote`. */
export function commonOptions(y: Argv, jsonHelp: string, exitNote: string): Argv {
  return y
    .positional('queue-dir', { type: 'string', describe: 'the queue directory (holds QUEUE and log/)' })
    .option('key-file', {
      type: 'string',
      requiresArg: true,
      describe: 'file holding the encryption key(s); see "Key file" below',
    })
    .option('json', { type: 'boolean', default: false, describe: jsonHelp })
    .epilogue(`${KEY_FILE_HELP}\n\n${EXIT_CODES_HELP}\n${exitNote}`);
}

export function commonArgs(argv: Record<string, unknown>): CommonArgs {
  const dir = argv['queue-dir'];
  if (typeof dir !== 'string' || dir === '') throw usageError('a queue directory is required');
  const keyFile = argv['key-file'];
  if (keyFile !== undefined && (typeof keyFile !== 'string' || keyFile === '')) {
    throw usageError('--key-file needs a file name');
  }
  return { dir, keyFile, json: argv['json'] === true };
}

/**
 * A whole number ≥ min from an option given as a string (yargs' own number type lets "5x" through as NaN and
 * "1e3" as 1000); undefined when the option is absent.
 */
export function intOption(argv: Record<string, unknown>, name: string, min: number): number | undefined {
  const raw = argv[name];
  if (raw === undefined) return undefined;
  const text = String(raw).trim();
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < min) {
    throw usageError(`--${name} must be a whole number of at least ${min}, got '${String(raw)}'`);
  }
  return n;
}
