/**
 * Payloads the crash tests can recognise: a 12-byte prefix (magic, run, i) and a body derived from them, of a
 * size that varies with i (so records straddle pages and segment ends in many ways).
 */
export function payloadOf(run: number, i: number): Buffer {
  const size = 12 + ((i * 37 + run * 11) % 300);
  const b = Buffer.alloc(size);
  b.writeUInt32LE(0x5eed5eed, 0);
  b.writeUInt32LE(run, 4);
  b.writeUInt32LE(i, 8);
  for (let k = 12; k < size; k++) b[k] = (run * 31 + i * 7 + k) & 0xff;
  return b;
}

/** The (run, i) a payload claims, if it is exactly the payload payloadOf makes for them. */
export function parsePayload(b: Buffer): { run: number; i: number } | undefined {
  if (b.length < 12 || b.readUInt32LE(0) !== 0x5eed5eed) return undefined;
  const run = b.readUInt32LE(4);
  const i = b.readUInt32LE(8);
  return payloadOf(run, i).equals(b) ? { run, i } : undefined;
}

/** Which records the compaction kill test keeps: a pattern that leaves some segments dead and some sparse. */
export function isLiveSeq(seq: number): boolean {
  return seq % 100 < 20 && seq % 3 === 0;
}
