/**
 * Child for the compaction kill test: opens the log, and runs compaction through an Fs that SIGKILLs this
 * process at the `killAt`th file-system call compaction makes (0: never; then it prints how many calls it made).
 * argv: <dir> <killAt>
 */
import * as fs from 'node:fs';
import { Log } from '../../../lib/log/log.js';
import { nodeFs, type Fs } from '../../../lib/log/fs.js';
import { isLiveSeq } from './payload.js';

const [dir, killAtArg] = process.argv.slice(2);
const killAt = Number(killAtArg);
let calls = 0;
let armed = false;
const tick = (): void => {
  if (!armed) return;
  calls++;
  if (calls === killAt) process.kill(process.pid, 'SIGKILL');
};
const killing = Object.fromEntries(
  Object.entries(nodeFs).map(([name, fn]) => [name, (...args: unknown[]) => (tick(), (fn as (...a: unknown[]) => unknown)(...args))]),
) as unknown as Fs;

const log = await Log.open(dir!, { fs: killing, maxSegmentBytes: 8192 });
armed = true;
await log.compact((e) => isLiveSeq(e.seq));
armed = false;
await log.close();
fs.writeSync(1, `calls ${calls}\n`);
