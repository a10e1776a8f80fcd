/**
 * The queue's record payloads (lib/store/events.ts): decodeAddData reads only the data of an ADD payload, and
 * must give what decoding the whole payload gives, for any data and any layout; the encoders built from parts
 * (encodeAdd, encodeComplete) write exactly the event's JSON; every record type's payload decodes to its event.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SpoolError } from '../../lib/errors.js';
import { REC, decodeAddData, decodeEvent, encodeAdd, encodeComplete, encodeEvent, type AddEvent } from '../../lib/store/events.js';

/** The layout the queue writes: d last. */
const dLast = (d: unknown, o: object = {}, id = '7', n = 'job'): Buffer =>
  Buffer.from(`{"id":${JSON.stringify(id)},"n":${JSON.stringify(n)},"o":${JSON.stringify(o)},"ts":1700000000000,"d":${JSON.stringify(d)}}`);

const DATA: unknown[] = [
  null,
  0,
  -1.5e-7,
  true,
  '',
  'plain',
  'quotes " and \\ backslashes \\" and "d": inside',
  'ünïcödé ✓ 𝄞',
  [],
  [1, [2, [3, { d: 4 }]], '}'],
  {},
  { d: 1, nested: { d: { d: [] } }, '"d":': '"d":' },
  { s: 'x'.repeat(5000) },
];

describe('decodeAddData', () => {
  it('returns the data of the layout the queue writes, for data of every JSON kind', () => {
    for (const d of DATA) assert.deepEqual(decodeAddData(dLast(d), 1), d, JSON.stringify(d).slice(0, 60));
  });

  it('is not fooled by "d": inside the envelope: in the id, the name or an option', () => {
    const tricky = ['"d":', '{"d":1}', ',"d":', '\\', 'd'];
    for (const s of tricky) {
      const payload = dLast({ real: s }, { deadLetter: `${s}"d":${s}`, backoff: { type: s } }, `${s}"d":`, `"d":${s}`);
      assert.deepEqual(decodeAddData(payload, 1), { real: s });
      assert.deepEqual(decodeAddData(payload, 1), decodeEvent<AddEvent>(payload, 1).d);
    }
  });

  it('decodes any other layout whole: d first or in the middle, d missing, whitespace', () => {
    const d = { a: [1, 2], b: 'c' };
    const layouts = [
      `{"d":${JSON.stringify(d)},"id":"1","n":"x","o":{},"ts":1}`,
      `{"id":"1","n":"x","d":${JSON.stringify(d)},"o":{},"ts":1}`,
      `{ "id": "1", "d": ${JSON.stringify(d)} }`,
      JSON.stringify({ id: '1', n: 'x', o: {}, ts: 1, d }, null, 2),
    ];
    for (const l of layouts) assert.deepEqual(decodeAddData(Buffer.from(l), 1), d, l);
    assert.equal(decodeAddData(Buffer.from('{"id":"1","n":"x","o":{},"ts":1}'), 1), undefined);
    // Duplicate keys: JSON.parse keeps the last, and so does this.
    assert.equal(decodeAddData(Buffer.from('{"id":"1","d":1,"d":2}'), 1), 2);
  });

  it('throws ERR_CORRUPT_RECORD for a payload that is not JSON', () => {
    for (const bad of ['', '{', '{"d":', '{"id":"1","d":}', 'not json', '{"d":1']) {
      assert.throws(() => decodeAddData(Buffer.from(bad), 42), (err: unknown) => err instanceof SpoolError && err.code === 'ERR_CORRUPT_RECORD' && /record 42/.test(err.message), bad);
    }
  });

  it('agrees with decoding the whole payload over many generated envelopes', () => {
    let seed = 12345;
    const rnd = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const pieces = ['"', '\\', 'd', '"d":', '{', '}', '[', ']', ',', ':', 'é', 'x', ' '];
    const str = (): string => Array.from({ length: Math.floor(rnd() * 8) }, () => pieces[Math.floor(rnd() * pieces.length)]).join('');
    for (let i = 0; i < 2000; i++) {
      const d = rnd() < 0.5 ? str() : { [str()]: [str(), { d: str() }] };
      const payload = dLast(d, { deadLetter: str() }, str(), str());
      assert.deepEqual(decodeAddData(payload, 1), d);
    }
  });
});

const utf8 = (p: Buffer | string): string => (typeof p === 'string' ? p : p.toString('utf8'));

/** One event of each record type, as the queue builds it (key order included). */
const ADD: AddEvent = { id: '12', n: 'send "mail"', o: { priority: 3, backoff: { type: 'fixed', delay: 5 } }, ts: 1700000000001, d: { to: 'ü@x', n: [1, 2] } };
const EVENTS: Record<keyof typeof REC, object> = {
  ADD,
  ACTIVE: { t: '3x1a', j: [['12', 1], ['13', 2]], ts: 1700000000002, s: 1 },
  COMPLETE: { id: '12', a: 1, rv: { ok: true, s: '"q"' }, ts: 1700000000003 },
  FAIL: { id: '12', a: 1, e: { name: 'Error', message: 'boom', code: 'E1', stack: 'Error: boom\n  at x' }, r: 1700000000100, ts: 1700000000004 },
  STALL: { id: '12', a: 2, r: null, ts: 1700000000005, why: 'job stalled', s: 1 },
  PROGRESS: { id: '12', p: { pct: 50 } },
  LOG: { id: '12', l: 'a line \u2028 é' },
  REMOVE: { ids: ['12', 'custom id'] },
  PROMOTE: { id: '12' },
  PAUSE: {},
  RESUME: {},
  RETRY: { id: '12', ts: 1700000000006 },
  RELEASE: { id: '12', a: 1, why: 'not started' },
  START: { t: '3x1a', n: 2 },
};

/** Each record type's payload as the queue writes it: by its own encoder where it has one, else encodeEvent. */
function encodeAs(type: keyof typeof REC, ev: object): Buffer | string {
  if (type === 'ADD') {
    const a = ev as AddEvent;
    return encodeAdd(a, JSON.stringify(a.d));
  }
  if (type === 'COMPLETE') {
    const c = ev as { id: string; a: number; rv: unknown; ts: number };
    return encodeComplete(c.id, c.a, JSON.stringify(c.rv), c.ts);
  }
  return encodeEvent(ev);
}

describe('record encoders', () => {
  for (const type of Object.keys(REC) as Array<keyof typeof REC>) {
    it(`round-trips a ${type} record: its payload decodes to the event it was made from`, () => {
      const ev = EVENTS[type];
      const payload = Buffer.from(utf8(encodeAs(type, ev)), 'utf8');
      assert.deepEqual(decodeEvent(payload, 1), ev);
      if (type === 'ADD') assert.deepEqual(decodeAddData(payload, 1), (ev as AddEvent).d);
    });
  }

  it('encodeAdd writes exactly the JSON of the event, from parts given or made, with and without data or an origin', () => {
    const dl = { q: 'src', id: '"7"', a: 3, e: { name: 'Error', message: 'x "y"' } };
    const events: AddEvent[] = [
      ADD,
      { id: 'custom "id"', n: 'n\u2028', o: {}, ts: 1, d: [null, '}'] },
      { id: 'src:7', n: 'moved', o: {}, ts: 2, dl, d: { k: 'v' } },
      { id: '9', n: 'no data', o: {}, ts: 3, d: undefined },
    ];
    for (const ev of events) {
      const json = encodeEvent(ev).toString('utf8');
      const data = JSON.stringify(ev.d);
      assert.equal(utf8(encodeAdd(ev, data)), json);
      assert.equal(utf8(encodeAdd(ev, data, JSON.stringify(ev.n), JSON.stringify(ev.id), JSON.stringify(ev.o))), json);
    }
  });

  it('encodeComplete writes exactly the JSON of the COMPLETE event', () => {
    for (const rv of [null, 0, 'text "q" \\', { a: [1, { b: 'ü' }] }]) {
      for (const id of ['1', 'custom "id" é']) {
        assert.equal(encodeComplete(id, 2, JSON.stringify(rv), 1700000000000), encodeEvent({ id, a: 2, rv, ts: 1700000000000 }).toString('utf8'));
      }
    }
  });
});
