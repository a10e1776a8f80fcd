/**
 * `spoolq stats <queue-dir>`: what a queue's log holds, in one read-only pass (the library's logStats). Exits 0
 * whenever the log could be read: damage is counted here, judged by `verify`.
 *
 * Live and dead are the log's own view: every record a reader accepts is live; dead bytes are everything else in
 * the files (segment headers, damage, torn tails, fenced records). Which jobs are still needed is the queue's
 * business, not the log's, so records of finished jobs count as live until compaction drops them.
 */
import { logStats, type LogStats } from '../../lib/index.js';
import { commonArgs, commonOptions, type CliCommand, type CommonArgs } from '../command.js';
import { encryptionFrom } from '../key-file.js';
import { EXIT_OK, type CliIo } from '../io.js';

export function runStats(args: CommonArgs, io: CliIo): number {
  // The key is only checked against the log's manifest: no statistic needs a payload.
  const stats = logStats(args.dir, { encryption: encryptionFrom(args.keyFile) });
  if (args.json) io.stdout.write(JSON.stringify(stats, null, 2) + '\n');
  else io.stdout.write(humanStats(stats).join('\n') + '\n');
  return EXIT_OK;
}

function humanStats(s: LogStats): string[] {
  const seqs = s.firstSeq === undefined ? 'none' : `${s.firstSeq}..${s.lastSeq}`;
  const types = Object.entries(s.types)
    .map(([type, n]) => `${type}: ${n}`)
    .join(', ');
  return [
    `queue         ${s.dir}`,
    `segments      ${s.segments} (rolled at ${s.maxSegmentBytes} bytes)`,
    `bytes         ${s.bytes}`,
    `records       ${s.records} (seq ${seqs})`,
    `live          ${s.live.records} records, ${s.live.bytes} bytes`,
    `dead          ${s.dead.records} records, ${s.dead.bytes} bytes (headers, damage, torn tails, preallocated zeros, fenced records)`,
    `damaged       ${s.damagedBytes} bytes`,
    `fenced        ${s.fenced} records`,
    `by type       ${types || 'none'}`,
    `compressed    ${s.compressed} records`,
    `encrypted     ${s.encryptedRecords} records (log ${s.encrypted ? 'is' : 'is not'} encrypted)`,
  ];
}

export const statsCommand: CliCommand<CommonArgs> = {
  command: 'stats <queue-dir>',
  describe: 'count the segments, bytes and records of a queue (read-only)',
  builder: (y) =>
    commonOptions(y, 'print the statistics as one JSON object', 'stats exits 0 whenever it could read the log.')
      .example('$0 stats ./data/emails', 'sizes, record counts per type, live and dead space')
      .example('$0 stats ./data/emails --json | jq .dead.bytes', 'bytes that hold no live record'),
  args: commonArgs,
  run: runStats,
};
