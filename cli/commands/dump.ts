/**
 * `spoolq dump <queue-dir>`: the records of a queue's log in log order, one line each (human) or one JSON object
 * each (NDJSON). Built on readLog; stops reading once --limit records are printed.
 *
 * Without --key-file the records of an encrypted log are still listed, with their payloads marked as encrypted:
 * that is not an error. A payload that cannot be decoded (a key id missing from the key file, tampering) is shown
 * as an error in its line and makes the exit code 1, as does damage the scan stepped over.
 */
import { readLog } from '../../lib/index.js';
import { commonArgs, commonOptions, intOption, type CliCommand, type CommonArgs } from '../command.js';
import { encryptionFrom } from '../key-file.js';
import { EXIT_OK, EXIT_PROBLEMS, LineBuffer, type CliIo } from '../io.js';
import { humanRecord, jsonRecord, viewPayload } from '../render.js';

export interface DumpArgs extends CommonArgs {
  /** First seq to print (records before it are read and skipped). */
  fromSeq: number | undefined;
  /** Print at most this many records. */
  limit: number | undefined;
}

export function runDump(args: DumpArgs, io: CliIo): number {
  const encryption = encryptionFrom(args.keyFile);
  const haveKeys = encryption !== undefined;
  const out = new LineBuffer(io.stdout);
  let printed = 0;
  let undecoded = 0;
  let hidden = 0;
  let result: ReturnType<typeof readLog>;
  try {
    result = readLog(args.dir, {
      encryption,
      fromSeq: args.fromSeq,
      onEntry: (entry) => {
        const view = viewPayload(entry, haveKeys);
        if (view.kind === 'error') undecoded++;
        if (view.kind === 'encrypted') hidden++;
        out.line(args.json ? JSON.stringify(jsonRecord(entry, view)) : humanRecord(entry, view));
        printed++;
        if (args.limit !== undefined && printed >= args.limit) return false;
      },
    });
  } finally {
    // Whatever was printed before an error reaches stdout before the error reaches stderr.
    out.flush();
  }

  if (hidden > 0) {
    io.stderr.write(`spoolq: note: ${hidden} encrypted payload(s) not shown; pass --key-file to decrypt them\n`);
  }
  let code = EXIT_OK;
  if (undecoded > 0) {
    io.stderr.write(`spoolq: ${undecoded} payload(s) could not be decoded (see their lines)\n`);
    code = EXIT_PROBLEMS;
  }
  if (result.damage.length > 0) {
    const bytes = result.damage.reduce((n, d) => n + d.end - d.offset, 0);
    io.stderr.write(
      `spoolq: skipped ${result.damage.length} damaged range(s), ${bytes} bytes; run 'spoolq verify' for details\n`,
    );
    code = EXIT_PROBLEMS;
  }
  return code;
}

export const dumpCommand: CliCommand<DumpArgs> = {
  command: 'dump <queue-dir>',
  describe: 'print the records of a queue in log order (read-only)',
  builder: (y) =>
    commonOptions(
      y,
      'print NDJSON: one object per record; "encoding" says whether "payload" is utf8 text, base64, ' +
        'or absent (encrypted, error)',
      'dump exits 1 when a payload does not decode or damage was skipped; encrypted payloads without a key are ' +
        'shown as such, exit 0.',
    )
      .option('from', { type: 'string', requiresArg: true, describe: 'start at this sequence number (≥ 1)' })
      .option('limit', { type: 'string', requiresArg: true, describe: 'print at most this many records (≥ 1)' })
      .example('$0 dump ./data/emails', 'every record, payloads as text or hex, long ones shortened')
      .example('$0 dump ./data/emails --from 1000 --limit 10', 'ten records from seq 1000')
      .example('$0 dump ./data/emails --json --key-file k.hex', 'whole payloads, decrypted, as NDJSON'),
  args: (argv) => ({ ...commonArgs(argv), fromSeq: intOption(argv, 'from', 1), limit: intOption(argv, 'limit', 1) }),
  run: runDump,
};
