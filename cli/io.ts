/**
 * The CLI's output seam and its exit codes. Owns: where commands write (an injectable stdout/stderr, so a
 * command can be called from a test and its output read back), how an error becomes a message and an exit code,
 * and batching of many small writes. Does not own: parsing arguments (main.ts) or what commands print.
 *
 * Exit codes, the same for every command:
 *   0  ok
 *   1  problems found: damage, payloads that do not decode, a corrupt manifest
 *   2  the command could not run: bad usage, not a queue directory, bad key file, wrong or missing key, I/O error
 */
import { SpoolError } from '../lib/index.js';

export const EXIT_OK = 0;
export const EXIT_PROBLEMS = 1;
export const EXIT_USAGE = 2;

/** The exit codes as --help states them. */
export const EXIT_CODES_HELP = 'Exit codes: 0 ok; 1 problems found; 2 bad usage, not a queue, bad or wrong key.';

/** Anything with a write(string): process.stdout, or a collector in tests. */
export interface Writer {
  write(chunk: string): unknown;
}

export interface CliIo {
  stdout: Writer;
  stderr: Writer;
}

/** Collects output in memory: for tests and for callers that want a command's output as a string. */
export class MemoryWriter implements Writer {
  #chunks: string[] = [];

  write(chunk: string): boolean {
    this.#chunks.push(chunk);
    return true;
  }

  get text(): string {
    return this.#chunks.join('');
  }
}

export function memoryIo(): { io: CliIo; stdout: MemoryWriter; stderr: MemoryWriter } {
  const stdout = new MemoryWriter();
  const stderr = new MemoryWriter();
  return { io: { stdout, stderr }, stdout, stderr };
}

/**
 * Joins lines into chunks of about 64 KiB before writing: dump prints one line per record, and one write per
 * line would cost a syscall each. Call flush() at the end (and before writing to stderr, to keep the order).
 */
export class LineBuffer {
  readonly #out: Writer;
  #lines: string[] = [];
  #bytes = 0;

  constructor(out: Writer) {
    this.#out = out;
  }

  line(text: string): void {
    this.#lines.push(text);
    this.#bytes += text.length + 1;
    if (this.#bytes >= 64 * 1024) this.flush();
  }

  flush(): void {
    if (this.#lines.length === 0) return;
    this.#out.write(this.#lines.join('\n') + '\n');
    this.#lines = [];
    this.#bytes = 0;
  }
}

/** A mistake in the command line or its inputs that the CLI itself finds (ERR_INVALID_ARG, exit 2). */
export function usageError(message: string): SpoolError {
  return new SpoolError('ERR_INVALID_ARG', message);
}

/** Codes that mean the data itself is damaged: a problem found (1), not a command that could not run (2). */
const PROBLEM_CODES = new Set<string>(['ERR_CORRUPT_RECORD']);

/** A hint printed after the message, for the codes where the next step is not obvious. */
const HINTS: Partial<Record<string, string>> = {
  ERR_NOT_A_LOG: 'pass the queue directory itself (the one holding the QUEUE file and log/)',
  ERR_KEY_MISSING: 'pass --key-file with every key id the log uses',
  ERR_INVALID_ARG: "run 'spoolq <command> --help' for usage",
};

/** Prints `spoolq: <code>: <message>` (and a hint) to stderr and returns the exit code for the error. */
export function reportError(io: CliIo, err: unknown): number {
  if (err instanceof SpoolError) {
    io.stderr.write(`spoolq: ${err.code}: ${err.message}\n`);
    const hint = HINTS[err.code];
    if (hint) io.stderr.write(`spoolq: hint: ${hint}\n`);
    return PROBLEM_CODES.has(err.code) ? EXIT_PROBLEMS : EXIT_USAGE;
  }
  // Not one of ours: a bug. Show the stack so it can be reported; 2 since nothing was determined about the log.
  const detail = err instanceof Error ? (err.stack ?? err.message) : String(err);
  io.stderr.write(`spoolq: internal error: ${detail}\n`);
  return EXIT_USAGE;
}

/** Runs a command body, turning any error into its message and exit code. */
export function runGuarded(io: CliIo, body: () => number): number {
  try {
    return body();
  } catch (err) {
    return reportError(io, err);
  }
}
