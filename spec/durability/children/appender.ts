/**
 * Child process for the kill -9 tests: opens the log in fsync mode and appends forever, keeping `inFlight`
 * appends outstanding, and reports each acknowledged append on stdout as a line `ack <seq> <run> <i>` written
 * synchronously (fs.writeSync to fd 1), so a line the parent reads was acknowledged before the kill.
 *
 * Payloads are made by payloadOf(run, i), so the parent can tell a real payload from anything else.
 * argv: <dir> <run> <inFlight> <maxSegmentBytes>
 */
import * as fs from 'node:fs';
import { Log } from '../../../lib/log/log.js';
import { payloadOf } from './payload.js';

const [dir, runArg, inFlightArg, segArg] = process.argv.slice(2);
const run = Number(runArg);
const inFlight = Number(inFlightArg);

const log = await Log.open(dir!, { durability: 'fsync', maxSegmentBytes: Number(segArg) });
fs.writeSync(1, `open ${log.epoch} ${log.nextSeq}\n`);
let i = 0;
async function lane(): Promise<never> {
  for (;;) {
    const n = i++;
    const ptr = await log.append(1 + (n % 7), payloadOf(run, n));
    fs.writeSync(1, `ack ${ptr.seq} ${run} ${n}\n`);
  }
}
await Promise.all(Array.from({ length: inFlight }, lane));
