const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/**
 * A ULID (time-ordered, 26 Crockford base-32 characters): ids sort by creation
 * time, which keeps queue indexes append-mostly.
 */
export function newId(now: number = Date.now()): string {
  const time = timePart(now);
  const random = crypto.getRandomValues(new Uint8Array(16));
  let rest = "";
  for (const byte of random) rest += ALPHABET[byte % 32];
  return time + rest;
}

/** The smallest id made at `time`: every id made before it sorts lower. */
export function firstIdAt(time: number): string {
  return timePart(time) + "0".repeat(16);
}

/** When an id was made (its first 10 characters), in ms since the epoch. */
export function timeOfId(id: string): number {
  let time = 0;
  for (const char of id.slice(0, 10)) time = time * 32 + ALPHABET.indexOf(char);
  return time;
}

function timePart(time: number): string {
  let text = "";
  let t = time;
  for (let i = 0; i < 10; i++) {
    text = ALPHABET[t % 32] + text;
    t = Math.floor(t / 32);
  }
  return text;
}
