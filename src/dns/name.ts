/** Domain names on the wire: labels, length limits and compression (RFC 1035 3.1, 4.1.4). */

const MAX_NAME_OCTETS = 255; // RFC 1035 2.3.4, counting length octets and the root
const MAX_LABEL = 63;
const MAX_POINTERS = 64;

export type Decoded<T> = { ok: true; value: T; end: number } | { ok: false; error: string };

/**
 * Reads a name at `offset`. Compression pointers must point to a prior
 * occurrence (RFC 1035 4.1.4), so a pointer to itself or forward (a loop) is an error.
 * `end` is the offset after the name's bytes in place (after the first pointer).
 */
export function readName(bytes: Uint8Array, offset: number): Decoded<string> {
  const labels: string[] = [];
  let pos = offset;
  let end = -1;
  let octets = 1;
  let pointers = 0;
  let floor = offset; // a pointer must point below the start of the bytes it interrupts
  for (;;) {
    if (pos >= bytes.length) return { ok: false, error: `name at ${offset} runs past the message end` };
    const len = bytes[pos]!;
    if (len === 0) {
      if (end === -1) end = pos + 1;
      break;
    }
    const kind = len & 0xc0;
    if (kind === 0xc0) {
      if (pos + 1 >= bytes.length) return { ok: false, error: `pointer at ${pos} is truncated` };
      const target = ((len & 0x3f) << 8) | bytes[pos + 1]!;
      if (target >= floor) return { ok: false, error: `pointer at ${pos} to ${target} is not backward (loop)` };
      if (++pointers > MAX_POINTERS) return { ok: false, error: `name at ${offset} has too many pointers` };
      if (end === -1) end = pos + 2;
      pos = target;
      floor = target;
      continue;
    }
    if (kind !== 0) return { ok: false, error: `label type 0x${kind.toString(16)} at ${pos} is not supported` };
    if (pos + 1 + len > bytes.length) return { ok: false, error: `label at ${pos} runs past the message end` };
    octets += len + 1;
    if (octets > MAX_NAME_OCTETS) return { ok: false, error: `name at ${offset} is longer than 255 octets` };
    labels.push(String.fromCharCode(...bytes.subarray(pos + 1, pos + 1 + len)));
    pos += 1 + len;
  }
  return { ok: true, value: labels.length === 0 ? "." : labels.join("."), end };
}

/** Labels of a name given as text ("a.b", "a.b.", "." or ""), or an error saying why it cannot be sent. */
export function nameLabels(name: string): string[] | string {
  const trimmed = name.endsWith(".") ? name.slice(0, -1) : name;
  if (trimmed === "") return [];
  const labels = trimmed.split(".");
  let octets = 1;
  for (const label of labels) {
    if (label.length === 0) return `empty label in "${name}"`;
    if (label.length > MAX_LABEL) return `label longer than 63 octets in "${name}"`;
    if (!/^[\x21-\x7e]+$/.test(label)) return `label with a non-ASCII or blank octet in "${name}"`;
    octets += label.length + 1;
  }
  return octets > MAX_NAME_OCTETS ? `"${name}" is longer than 255 octets` : labels;
}

/** True when `name` can be put in a query. */
export function isValidName(name: string): boolean {
  return typeof nameLabels(name) !== "string";
}

/** Appends names to a growing message, reusing earlier suffixes through pointers (RFC 1035 4.1.4). */
export class NameWriter {
  private readonly seen = new Map<string, number>();

  /** Bytes for `name` when it starts at message offset `at`. Throws RangeError on a name that cannot be encoded. */
  encode(name: string, at: number): number[] {
    const labels = nameLabels(name);
    if (typeof labels === "string") throw new RangeError(labels);
    const out: number[] = [];
    for (let i = 0; i < labels.length; i++) {
      const suffix = labels.slice(i).join(".").toLowerCase();
      const prior = this.seen.get(suffix);
      if (prior !== undefined) return [...out, 0xc0 | (prior >> 8), prior & 0xff];
      const offset = at + out.length;
      if (offset < 0x4000) this.seen.set(suffix, offset);
      const label = labels[i]!;
      out.push(label.length, ...Array.from(label, (c) => c.charCodeAt(0)));
    }
    out.push(0);
    return out;
  }
}
