/**
 * Trims WSP (space and tab, RFC 5234 B.1) from both ends. Scanned by hand: the
 * regex /[ \t]+$/ retries at each blank of an inner run, quadratically, and
 * these texts come from anyone's DNS records and policy files.
 */
export function trimWsp(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && isWsp(text.charCodeAt(start))) start++;
  while (end > start && isWsp(text.charCodeAt(end - 1))) end--;
  return text.slice(start, end);
}

const isWsp = (code: number) => code === 0x20 || code === 0x09;
