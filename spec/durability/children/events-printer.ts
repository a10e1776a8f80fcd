/**
 * Child process for queue-events-process.spec.ts: a QueueEvents on queue 'q' that prints every event it gets as
 * one line `<id> <event> <jobId or -> <detail>` (detail: completed's returnvalue, failed's reason, else prev or '-'),
 * written synchronously to fd 1 so that a line the parent reads was emitted. Prints `started` once it has looked
 * for the queue, `ready` once reading has begun.
 * It only reads: it never opens a Queue or a Worker.
 *
 * argv: <dir> [lastEventId]
 */
import * as fs from 'node:fs';
import { QueueEvents } from '../../../lib/index.js';

const [dir, lastEventId] = process.argv.slice(2);
const qe = new QueueEvents('q', { dir: dir!, lastEventId });
const NAMES = ['added', 'waiting', 'delayed', 'active', 'progress', 'completed', 'failed', 'retries-exhausted', 'stalled', 'removed', 'paused', 'resumed', 'drained'] as const;
for (const event of NAMES) {
  (qe as unknown as NodeJS.EventEmitter).on(event, (...args: unknown[]) => {
    const id = args[args.length - 1] as string;
    const p = (args.length > 1 ? args[0] : {}) as { jobId?: string; returnvalue?: unknown; failedReason?: string; prev?: string };
    const detail = event === 'completed' ? JSON.stringify(p.returnvalue) : event === 'failed' ? JSON.stringify(p.failedReason) : (p.prev ?? '-');
    fs.writeSync(1, `${id} ${event} ${p.jobId ?? '-'} ${detail}\n`);
  });
}
qe.on('error', (err) => fs.writeSync(2, `error ${err.message}\n`));
// The constructor has looked for the queue once already (synchronously): from here on, a queue created is one
// that did not exist when it started, which it reads from its first record.
fs.writeSync(1, 'started\n');
await qe.waitUntilReady();
fs.writeSync(1, 'ready\n');
