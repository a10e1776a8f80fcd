/**
 * The server process of remote-roundtrip.ts. Not a benchmark. argv: <mode> <address>, mode `ours` (a RemoteServer
 * whose handler answers each request with its seq, synchronously: the transport alone, no owner behind it) or
 * `raw` (a net server that writes back every chunk it reads: the floor of the syscalls). Prints `listening` once
 * it listens; exits when its stdin closes (the bench process ended, however it ended).
 */
import * as net from 'node:net';
import { RemoteServer } from '../lib/queue/remote/server.js';

const [mode, address] = process.argv.slice(2);
if (mode === 'ours') {
  await RemoteServer.listen({ address: address!, queue: 'bench', epoch: 1, handle: ({ seqs }) => seqs });
} else {
  const server = net.createServer((socket) => {
    socket.on('data', (chunk) => socket.write(chunk));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(address!, resolve));
}
process.stdout.write('listening\n');
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
