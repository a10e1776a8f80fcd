/**
 * Child process for live-writer.spec.ts: an owner appending to a queue as fast as it can, in fsync mode (so its
 * head holds preallocated zeros), from several concurrent lanes, until it is killed. Writes `open` once ready,
 * then `n <count>` after every 20 acknowledged appends, synchronously to fd 1, so the parent can wait for progress.
 *
 * argv: log <dir> <maxSegmentBytes>     Log.append of records of types 1..7
 *       queue <root> <maxSegmentBytes>  Queue.add of jobs to queue 'q' under root
 */
import * as fs from 'node:fs';
import { Log, Queue } from '../../../lib/index.js';

const [mode, dir, segArg] = process.argv.slice(2);
const maxSegmentBytes = Number(segArg);
const LANES = 4;

let appended = 0;
const acked = (): void => {
  if (++appended % 20 === 0) fs.writeSync(1, `n ${appended}\n`);
};

let append: (i: number) => Promise<unknown>;
if (mode === 'log') {
  const log = await Log.open(dir!, { durability: 'fsync', maxSegmentBytes });
  append = (i) => log.append(1 + (i % 7), Buffer.from(`record-${i}-${'r'.repeat(i % 200)}`));
} else if (mode === 'queue') {
  const queue = new Queue('q', { dir: dir!, durability: 'fsync', maxSegmentBytes });
  await queue.waitUntilReady();
  append = (i) => queue.add('job', { i, pad: 'j'.repeat(i % 200) });
} else {
  throw new Error(`unknown mode ${mode}`);
}
fs.writeSync(1, 'open\n');
let next = 0;
async function lane(): Promise<never> {
  for (;;) {
    await append(next++);
    acked();
  }
}
await Promise.all(Array.from({ length: LANES }, lane));
