/**
 * The rule every reader applies to what is not a record: which bytes are damage, and which are only the head's
 * tail. verify, readLog (the CLI's dump) and stats all judge a scan (log-scan.ts) here, so that beside a live owner
 * none of them raises a false alarm, and none of them misses real damage. Read-only; no lock.
 *
 * The head is the last segment listed when the scan began. What follows its last valid record is its tail, and
 * a tail is never damage:
 *   - zeros (kind 'zero'): space an fsync-mode owner writes ahead of its appends (writer.ts, Preallocation), or
 *     left behind when that owner died without closing;
 *   - a record that is incomplete or fails its checksum, with nothing valid after it (kind 'incomplete' or
 *     'garbage'): the batch being written right now while an owner is live; a torn write when none is, which the
 *     next open cuts off (recovery.ts).
 * Damage is:
 *   - in any segment, a range that is not a record with a valid record after it. The scanner judges such a range
 *     only on bytes read after the record that ends it was seen (segment-scanner.ts, Beside a live writer), so a
 *     record being written is never taken for one, however the reads interleave with the writes;
 *   - in a sealed segment (any but the head), anything after the last record: the writer cuts a segment back to
 *     its data and writes its last batch before it creates the next one, so a segment listed with a successor
 *     is final, and ends with its last record.
 * (A bad segment header is judged by verify: damage, except on a last segment that holds no record, which is a
 * roll caught between creating the file and writing its header.)
 *
 * Why a snapshot read beside a writer gets this right every time: the listing comes first, so a segment listed
 * as sealed was final before it was listed. The segment listed last may be sealed by a roll while it is read; a
 * roll only cuts zeros off it (or the reads stop at the new end of file), so it still ends in a tail. The size is
 * taken once per segment: bytes the writer adds past it are simply not read, and a record cut by it is an
 * incomplete tail.
 */
import type { LogScanSummary } from './log-scan.js';
import type { DamagedRange, TailKind } from './segment-scanner.js';

/** What follows the head's last record. */
export interface HeadTail {
  segmentId: number;
  offset: number;
  bytes: number;
  kind: Exclude<TailKind, 'clean'>;
}

export interface ScanJudgement {
  /** The scanner's damaged ranges, then the bad tails of sealed segments. */
  damage: DamagedRange[];
  /** The head's tail, when it does not end cleanly with its last record. */
  headTail: HeadTail | undefined;
}

export function judgeScan(summary: LogScanSummary): ScanJudgement {
  const damage = [...summary.damage];
  let headTail: HeadTail | undefined;
  const last = summary.segments.length - 1;
  summary.segments.forEach((s, i) => {
    if (s.tail === 'clean') return;
    // A scan stopped early (onEntry returned false) stops in its last segment, whose tail then reads 'clean'.
    if (i === last) headTail = { segmentId: s.segmentId, offset: s.end, bytes: s.fileSize - s.end, kind: s.tail };
    else damage.push({ segmentId: s.segmentId, offset: s.end, end: s.fileSize, reason: `sealed segment ends in ${s.tail} bytes` });
  });
  return { damage, headTail };
}
