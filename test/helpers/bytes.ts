/** Byte strings joined into one fresh Uint8Array (Buffer.concat gives a Buffer, which deepEqual tells apart). */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) (out.set(p, at), at += p.length);
  return out;
}
