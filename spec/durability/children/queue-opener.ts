/**
 * Child process for queue-open-race.spec.ts: opens a Queue (creating it if it is not there), says how that went,
 * and keeps it open until its stdin closes, so that a process racing it sees it as the owner.
 *
 * stdout, one line written synchronously: `ok` or `err <code> <message>`. argv: <rootDir> <queueName>
 */
import * as fs from 'node:fs';
import { Queue } from '../../../lib/index.js';

const [root, name] = process.argv.slice(2);
const queue = new Queue(name!, { dir: root!, durability: 'fsync' });
queue.on('error', () => undefined);
try {
  await queue.waitUntilReady();
  fs.writeSync(1, 'ok\n');
} catch (err) {
  const e = err as Error & { code?: string };
  fs.writeSync(1, `err ${e.code ?? e.name} ${e.message}\n`);
}
process.stdin.resume();
process.stdin.on('end', () => {
  void queue.close().finally(() => process.exit(0));
});
