/**
 * Child process for remote-processes.spec.ts and remote.spec.ts's stale-socket tests: an owner socket server
 * (lib/queue/remote/server.ts) whose handler stands in for the owner's. It "applies" a request by appending
 * `<clientId>:<seq> <reply>` to `appliedFile` with one synchronous write before it replies (the page cache
 * survives kill -9, as the log's records do); at start it reads that file, so a server started after another
 * was killed knows what the killed one applied, and answers a repeated key with the reply it recorded
 * instead of applying it again, noting `dup <key>` in `dupFile` (before the reply goes). The reply to { n } is n * 2.
 *
 * With killAfter > 0 it SIGKILLs itself right after applying its killAfter-th request, inside the handler: in
 * the middle of a batch, before any reply of that batch is written.
 *
 * argv: <address> <queue> <epoch> <appliedFile> <dupFile> <killAfter>; prints `listening <address>` once it listens.
 */
import * as fs from 'node:fs';
import { RemoteServer } from '../../../lib/queue/remote/server.js';

const [address, queue, epochArg, appliedFile, dupFile, killAfterArg] = process.argv.slice(2);
const killAfter = Number(killAfterArg);

const applied = new Map<string, unknown>();
if (fs.existsSync(appliedFile!)) {
  for (const line of fs.readFileSync(appliedFile!, 'utf8').split('\n')) {
    if (line === '') continue;
    const [key, reply] = line.split(' ');
    applied.set(key!, JSON.parse(reply!));
  }
}
const fd = fs.openSync(appliedFile!, 'a');
let count = 0;

await RemoteServer.listen({
  address: address!,
  queue: queue!,
  epoch: Number(epochArg),
  handle: ({ connection, seqs, requests }) => {
    const replies: unknown[] = [];
    let dups = '';
    for (let i = 0; i < seqs.length; i++) {
      const key = `${connection.clientId}:${seqs[i]}`;
      if (applied.has(key)) {
        dups += `dup ${key}\n`;
        replies.push(applied.get(key));
        continue;
      }
      const reply = (requests[i] as { n: number }).n * 2;
      fs.writeSync(fd, `${key} ${JSON.stringify(reply)}\n`);
      applied.set(key, reply);
      replies.push(reply);
      if (++count === killAfter) process.kill(process.pid, 'SIGKILL');
    }
    if (dups !== '') fs.appendFileSync(dupFile!, dups);
    // One promise for the batch, as the owner's records of one group commit share one durability promise.
    const durable = Promise.resolve();
    return replies.map((r) => durable.then(() => r));
  },
});
fs.writeSync(1, `listening ${address}\n`);
