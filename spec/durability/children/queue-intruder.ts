/**
 * Child process for queue-two-workers.spec.ts: a claimant the owner does not know, in another process. It
 * watches tickets/ready (inotify, with a poll as a fallback) and tries to claim every ticket it sees with the
 * same rename a worker uses (TicketFiles.claim). It never runs or renews anything, so whatever it wins, the owner
 * must take back when the lease expires. After `maxWins` wins it keeps watching but stops claiming.
 *
 * stdout, each line written synchronously: `watching` once, then `won <ticket file name>` per win, and
 * `lost <n>` (claims that found the ticket gone: a worker renamed it first) whenever that count grows by 100.
 * argv: <queueDir> <maxWins>
 */
import * as fs from 'node:fs';
import { TicketFiles } from '../../../lib/queue/tickets.js';

const [queueDir, maxWinsArg] = process.argv.slice(2);
const maxWins = Number(maxWinsArg);
const files = new TicketFiles(queueDir!);
let wins = 0;
let lost = 0;

function sweep(): void {
  if (wins >= maxWins) return;
  let names: string[];
  try {
    names = fs.readdirSync(files.ready);
  } catch (err) {
    throw new Error('tickets/ready must exist: start the intruder after the queue is open', { cause: err });
  }
  for (const name of names) {
    if (!name.endsWith('.t')) continue;
    if (files.claim(name, 'intruder') !== undefined) {
      fs.writeSync(1, `won ${name}\n`);
      if (++wins >= maxWins) return;
    } else if (++lost % 100 === 0) {
      fs.writeSync(1, `lost ${lost}\n`);
    }
  }
}

fs.watch(files.ready, sweep);
setInterval(sweep, 5);
fs.writeSync(1, 'watching\n');
