/**
 * `spoolq verify <queue-dir>`: a full read-only check of a queue's log (the library's verifyLog), printed for
 * people or as one JSON object. Exit 0 when the log is ok, 1 when anything is damaged.
 *
 * The head's tail is reported but is never a failure (the library's rule, lib/log/head-tail.ts): zeros there are
 * space an fsync-mode owner preallocates; an incomplete or bad last record is the record a live owner is writing
 * right now, or, with no live owner, the torn write a crash left, which the next open cuts off. Which of the two
 * it likely is comes from the owner lock's pid; the verdict does not depend on it.
 */
import { verifyLog, type VerifyReport } from '../../lib/index.js';
import { commonArgs, commonOptions, type CliCommand, type CommonArgs } from '../command.js';
import { encryptionFrom } from '../key-file.js';
import { EXIT_OK, EXIT_PROBLEMS, type CliIo } from '../io.js';

export function runVerify(args: CommonArgs, io: CliIo): number {
  const encryption = encryptionFrom(args.keyFile);
  const report = verifyLog(args.dir, { encryption });
  if (args.json) io.stdout.write(JSON.stringify(report, null, 2) + '\n');
  else io.stdout.write(humanReport(report, encryption !== undefined).join('\n') + '\n');
  return report.ok ? EXIT_OK : EXIT_PROBLEMS;
}

function humanReport(r: VerifyReport, decoded: boolean): string[] {
  const out: string[] = [];
  const seqs = r.firstSeq === undefined ? 'none' : `${r.firstSeq}..${r.lastSeq}`;
  out.push(`queue     ${r.dir}`);
  out.push(`result    ${r.ok ? 'OK' : 'DAMAGED'}`);
  out.push(`segments  ${r.segments.length}`);
  out.push(`records   ${r.records} (seq ${seqs})${r.fenced ? `, ${r.fenced} fenced (written by an older owner, ignored)` : ''}`);
  out.push(`bytes     ${r.bytes}`);
  out.push(`payloads  ${payloadLine(r.encrypted, decoded)}`);

  out.push('', 'segments:');
  for (const s of r.segments) {
    const gen = s.generation === undefined ? '?' : String(s.generation);
    const tail = s.tail === 'clean' ? 'clean' : `${s.tail} (${s.fileSize - s.end} bytes)`;
    const header = s.headerError ? `  BAD HEADER: ${s.headerError}` : '';
    out.push(`  segment ${s.segmentId}  generation ${gen}  records ${s.records}  size ${s.fileSize}  end ${s.end}  tail ${tail}${header}`);
  }

  out.push('', r.damage.length ? `damaged ranges: ${r.damage.length}` : 'damaged ranges: none');
  for (const d of r.damage) {
    out.push(`  segment ${d.segmentId}  offset ${d.offset}  end ${d.end}  bytes ${d.end - d.offset}  reason: ${d.reason}`);
  }

  out.push(...tailLines(r));

  out.push(r.decodeErrors.length ? `decode errors: ${r.decodeErrors.length}` : `decode errors: ${decoded ? 'none' : 'not checked'}`);
  for (const e of r.decodeErrors) {
    out.push(`  seq ${e.seq}  segment ${e.segmentId}  offset ${e.offset}  ${e.code}: ${e.message}`);
  }

  out.push(`index: ${indexLine(r.index)}`);
  out.push(r.quarantined.length ? `quarantined: ${r.quarantined.length} file(s) in quarantine/` : 'quarantined: none');
  for (const q of r.quarantined) out.push(`  ${q}`);
  return out;
}

function tailLines(r: VerifyReport): string[] {
  const t = r.tornTail;
  const owner = r.ownerPid === undefined ? undefined : `the live owner (pid ${r.ownerPid})`;
  if (!t) return ['torn tail: none'];
  if (t.kind === 'zero') {
    return [
      `zeros past the end of data: segment ${t.segmentId}  offset ${t.offset}  bytes ${t.bytes}`,
      owner
        ? `  (space ${owner} allocates ahead of its appends: not a failure)`
        : '  (space an fsync-mode owner allocated ahead of its appends, left as it stopped: not a failure; the next open cuts it off)',
    ];
  }
  return [
    `torn tail: segment ${t.segmentId}  offset ${t.offset}  bytes ${t.bytes}  kind ${t.kind}`,
    owner
      ? `  (where ${owner} is writing right now: not a failure)`
      : '  (a write cut short by a crash: not a failure; the next open cuts it off)',
  ];
}

function payloadLine(encrypted: boolean, decoded: boolean): string {
  if (decoded) return `every payload decoded${encrypted ? ' (decrypted with the key file)' : ''}`;
  if (encrypted) return 'encrypted, not decrypted (pass --key-file to check them too)';
  return 'not decoded (checksums still cover every byte)';
}

function indexLine(index: VerifyReport['index']): string {
  if (index.usable) return `usable, covers the log up to seq ${(index.nextSeq ?? 1) - 1}`;
  if (!index.present) return 'none (the next open replays the whole log)';
  return `not usable: ${index.reason ?? 'unknown reason'} (a cache: the next open replays the log and rewrites it)`;
}

export const verifyCommand: CliCommand<CommonArgs> = {
  command: 'verify <queue-dir>',
  describe: 'check every segment, record and checksum of a queue (read-only)',
  builder: (y) =>
    commonOptions(
      y,
      'print the report as one JSON object',
      'verify exits 1 on damage or a payload that does not decode; a torn tail alone is not a failure.',
    )
      .example('$0 verify ./data/emails', 'check a queue; exit 1 if anything is damaged')
      .example('$0 verify ./data/emails --key-file emails.key', 'also decrypt and decompress every payload')
      .example('$0 verify ./data/emails --json | jq .damage', 'list the damaged ranges'),
  args: commonArgs,
  run: runVerify,
};
