// Structured mutations for the fuzz targets: a valid input changed the ways attackers and broken
// networks change it (bit flips, truncation, extension, a different type byte, splices), plus
// plain random bytes. Built on fast-check arbitraries so failures shrink and replay by seed.
import fc from 'fast-check';

export type Mutation =
  | { kind: 'flip'; bits: number[] }
  | { kind: 'truncate'; at: number }
  | { kind: 'extend'; tail: Uint8Array }
  | { kind: 'type'; type: number; reserved: boolean }
  | { kind: 'overwrite'; at: number; bytes: Uint8Array }
  | { kind: 'none' };

export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('flip' as const),
      bits: fc.array(fc.nat(), { minLength: 1, maxLength: 4 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('extend' as const),
      tail: fc.uint8Array({ minLength: 1, maxLength: 64 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('type' as const),
      type: fc.integer({ min: 0, max: 255 }),
      reserved: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('overwrite' as const),
      at: fc.nat(),
      bytes: fc.uint8Array({ minLength: 1, maxLength: 32 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'none' as const }) },
);

/** A mutated copy of `base` (never aliases it). */
export function mutate(base: Uint8Array, m: Mutation): Uint8Array {
  const out = Uint8Array.from(base);
  switch (m.kind) {
    case 'flip':
      if (out.length === 0) return out;
      for (const b of m.bits) {
        const bit = b % (out.length * 8);
        out[bit >> 3] = out[bit >> 3]! ^ (1 << (bit & 7));
      }
      return out;
    case 'truncate':
      return out.subarray(0, m.at % (out.length + 1)).slice();
    case 'extend': {
      const e = new Uint8Array(out.length + m.tail.length);
      e.set(out);
      e.set(m.tail, out.length);
      return e;
    }
    case 'type':
      if (out.length > 0) out[0] = m.type;
      if (m.reserved && out.length > 1) out[1 + (m.type % Math.min(3, out.length - 1))] = 1;
      return out;
    case 'overwrite':
      if (out.length === 0) return out;
      out.set(
        m.bytes.subarray(0, Math.max(0, out.length - (m.at % out.length))),
        m.at % out.length,
      );
      return out;
    case 'none':
      return out;
  }
}

/** Text mutations for line-based parsers (UAPI, config files). */
export const textMutationArb = fc.record({
  op: fc.constantFrom('flip', 'truncate', 'insert', 'dupline', 'dropline', 'swapchar'),
  at: fc.nat(),
  s: fc.oneof(
    fc.string({ maxLength: 12 }),
    fc.constantFrom(
      '=',
      '\n',
      '\r',
      '\0',
      '[',
      ']',
      '/',
      ':',
      ',',
      '-',
      ' ',
      '#',
      '0x',
      '99999999999',
      '-1',
      '\u00e9',
      '\ud83d\ude00',
    ),
  ),
});

export function mutateText(base: string, m: { op: string; at: number; s: string }): string {
  const i = base.length === 0 ? 0 : m.at % (base.length + 1);
  const lines = base.split('\n');
  const li = m.at % lines.length;
  switch (m.op) {
    case 'flip':
      if (base.length === 0) return m.s;
      return (
        base.slice(0, i) +
        String.fromCharCode(base.charCodeAt(i % base.length) ^ (1 << (m.at % 7))) +
        base.slice(i + 1)
      );
    case 'truncate':
      return base.slice(0, i);
    case 'insert':
      return base.slice(0, i) + m.s + base.slice(i);
    case 'dupline':
      lines.splice(li, 0, lines[li]!);
      return lines.join('\n');
    case 'dropline':
      lines.splice(li, 1);
      return lines.join('\n');
    default: {
      const j = (m.at * 7) % Math.max(1, base.length);
      const a = [...base];
      [a[i % Math.max(1, a.length)], a[j]] = [a[j]!, a[i % Math.max(1, a.length)]!];
      return a.join('');
    }
  }
}
