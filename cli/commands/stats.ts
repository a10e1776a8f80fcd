/**
 * `spoolq stats <queue-dir>`: what a queue's log holds, read-only (the library's queueStats). Exits 0 whenever
 * the log could be read: damage is counted here, judged by `verify`.
 *
 * Record types are shown by name (ADD, ACTIVE, …; type-N for one this version does not know). A record is live
 * while its job is: the records of removed jobs (by remove, clean, or retention) are dead, what compaction gives
 * back. When payloads cannot be read (an encrypted log without --key-file) every record counts as live, and the
 * output says so. Dead bytes are everything in the files that is not a live record; of those, only damage is
 * "damaged": the zeros an fsync-mode owner keeps ahead of its appends are shown as preallocated, and a record
 * being written at the head (or torn by a crash) as the head's tail.
 */
import { queueStats, type QueueStats } from '../../lib/index.js';
import { commonArgs, commonOptions, type CliCommand, type CommonArgs } from '../command.js';
import { encryptionFrom } from '../key-file.js';
import { EXIT_OK, type CliIo } from '../io.js';

export function runStats(args: CommonArgs, io: CliIo): number {
  const stats = queueStats(args.dir, { encryption: encryptionFrom(args.keyFile) });
  if (args.json) io.stdout.write(JSON.stringify(stats, null, 2) + '\n');
  else io.stdout.write(humanStats(stats).join('\n') + '\n');
  return EXIT_OK;
}

function humanStats(s: QueueStats): string[] {
  const seqs = s.firstSeq === undefined ? 'none' : `${s.firstSeq}..${s.lastSeq}`;
  const types = Object.entries(s.types)
    .map(([type, n]) => `${type}: ${n}`)
    .join(', ');
  const liveBy =
    s.liveness.by === 'jobs'
      ? `(records of the ${s.liveness.jobs} job(s) in the log; those of removed jobs are dead)`
      : `(every readable record: ${s.liveness.reason})`;
  return [
    `queue         ${s.dir}`,
    `segments      ${s.segments} (rolled at ${s.maxSegmentBytes} bytes)`,
    `bytes         ${s.bytes}`,
    `records       ${s.records} (seq ${seqs})`,
    `live          ${s.live.records} records, ${s.live.bytes} bytes ${liveBy}`,
    `dead          ${s.dead.records} records, ${s.dead.bytes} bytes (removed jobs' records, headers, damage, preallocated zeros, the head's tail, fenced records)`,
    `damaged       ${s.damagedBytes} bytes`,
    `preallocated  ${s.preallocatedBytes} bytes (zeros an fsync-mode owner keeps ahead of its appends: not damage)`,
    `head tail     ${s.headTailBytes} bytes (a record being written, or torn by a crash and cut at the next open: not damage)`,
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
      .example('$0 stats ./data/emails --key-file emails.key', 'an encrypted queue: the key tells live jobs from removed ones')
      .example('$0 stats ./data/emails --json | jq .dead.bytes', 'bytes that hold no live record'),
  args: commonArgs,
  run: runStats,
};
