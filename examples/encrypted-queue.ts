/**
 * An encrypted queue: job data, results and errors are sealed with AES-256-GCM on disk; a wrong key is refused
 * at open, before anything is written. Keep the key out of the code in real use (an env var, a keychain).
 * Run: node dist/examples/encrypted-queue.js
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { Queue, SpoolError, Worker } from '../lib/index.js';

const dir = './spool-data/encrypted';
const key = randomBytes(32);
const queue = new Queue('secrets', { dir, encryption: { key }, compression: true });
await queue.obliterate({ force: true });
await queue.add('store', { ssn: '078-05-1120', note: 'very private' });

// The Worker shares the Queue's owner in this process, so it is opened with the same options (else ERR_OPTIONS_CONFLICT).
const worker = new Worker('secrets', async (job) => `processed ${(job.data as { note: string }).note}`, { dir, encryption: { key }, compression: true });
await new Promise<void>((resolve) => worker.on('completed', () => resolve()));
await worker.close();
await queue.close();

const logDir = path.join(dir, 'secrets', 'log');
const onDisk = readdirSync(logDir).map((f) => readFileSync(path.join(logDir, f)).toString('latin1')).join('');
console.log(`plaintext on disk? ${onDisk.includes('078-05-1120') ? 'YES (bad)' : 'no: the data is encrypted'}`);

try {
  const wrong = new Queue('secrets', { dir, encryption: { key: randomBytes(32) } });
  await wrong.waitUntilReady();
} catch (err) {
  console.log(`opening with the wrong key: ${(err as SpoolError).code}`);
}
const again = new Queue('secrets', { dir, encryption: { key } });
const [job] = await again.getJobs(['completed']);
console.log(`with the right key: ${JSON.stringify(job?.data)} -> ${String(job?.returnvalue)}`);
await again.close();
