/**
 * The desk's cutting of tickets around orphaned jobs (lib/queue/owner/desk.ts, Starts in owner/starts.ts): a job released
 * orphaned (RELEASE o: 1) is never placed beyond a ticket's claim prefix `s`. The ticket is cut before it, a
 * worker with no free slot gets nothing while it heads the queue, and it goes at the head of the next ticket of a
 * worker with a free slot. Driven through a WorkerPort the test plays, so every cut is seen as it is made.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { Log } from '../../lib/log/log.js';
import { REC, encodeEvent } from '../../lib/store/events.js';
import type { WorkerPort } from '../../lib/queue/backend.js';
import type { TicketContent } from '../../lib/queue/tickets.js';
import { resolveQueueOptions } from '../../lib/queue/options.js';
import { Owner } from '../../lib/queue/owner/owner.js';
import { SAFETY, setup, until } from '../helpers/queue.js';

const JOBS = 40; // a backlog (>= BUSY), so that tickets carry lookahead beyond their prefix

describe('TicketDesk', () => {
  it('never places an orphaned job beyond its ticket\'s claim prefix, cutting the ticket before it', SAFETY, async (t) => {
    const s = setup(t);
    const q = s.queue();
    const ids = (await q.addBulk(Array.from({ length: JOBS }, (_, i) => ({ name: 'j', data: { i } })))).map((j) => j.id);
    await q.close();
    const orphan = ids[2]!;
    // What a new owner writes for a claimed-ahead job whose process died: unstarted, but maybe run unseen.
    const log = await Log.open(path.join(s.dir, 'q'), { durability: 'none' });
    await log.append(REC.ACTIVE, encodeEvent({ t: '1x0', j: [[orphan, 1]], ts: 1, s: 0 }));
    await log.append(REC.RELEASE, encodeEvent({ id: orphan, a: 1, why: 'not started when its lease was taken back', o: 1 }));
    await log.close();

    const owner = await Owner.open('q', resolveQueueOptions({ dir: s.dir, durability: 'none' }));
    try {
      assert.equal(owner.table.jobs.get(orphan)!.orphaned, true);
      const offers: TicketContent[] = [];
      const port: WorkerPort = { id: 'w', want: 0, free: 0, inFlight: 0, offer: (_name, content) => void offers.push(content) };
      owner.attach(port);
      const cut = async (free: number, want: number): Promise<TicketContent[]> => {
        const before = offers.length;
        port.free = free;
        port.want = want;
        owner.desk.dispatch();
        await until(() => port.inFlight === 0, 'the tickets cut to be offered');
        return offers.slice(before);
      };

      // One free slot, lookahead of 9: the ticket stops right before the orphan, not skipping over it.
      const [first, ...none] = await cut(1, 10);
      assert.deepEqual(none, []);
      assert.deepEqual(first!.jobs.map((j) => j.id), [ids[0], ids[1]]);
      assert.equal(first!.atClaim, 1);
      // No free slot: the orphan heads the queue, so this worker gets nothing (another with a free slot would).
      assert.deepEqual(await cut(0, 10), []);
      // A free slot again: the orphan is at its ticket's head, inside the prefix, with lookahead behind it.
      const [next] = await cut(1, 10);
      assert.equal(next!.jobs[0]!.id, orphan);
      assert.equal(next!.atClaim, 1);
      assert.equal(next!.jobs.length, 10);

      const placed = offers.flatMap((c) => c.jobs.map((j, slot) => ({ id: j.id, slot, atClaim: c.atClaim }))).filter((p) => p.id === orphan);
      assert.deepEqual(placed, [{ id: orphan, slot: 0, atClaim: 1 }]);
    } finally {
      await owner.close(); // before the setup's check of the log
    }
  });
});
