/**
 * The queue's record payloads (lib/store/events.ts): decodeAddData reads only the data of an ADD payload, and
 * must give what decoding the whole payload gives, for any data and any layout.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SpoolError } from '../../lib/errors.js';
import { decodeAddData, decodeEvent, type AddEvent } from '../../lib/store/events.js';

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
