/**
 * Header-style field groups, as in a message/delivery-status body (RFC 3464
 * 2.1) or a message/feedback-report (RFC 5965 3.1): blank-line separated
 * groups of "Name: value" lines, continuation lines folded in. Names are
 * lower-cased; the first occurrence of a name in a group wins.
 */
export type FieldGroup = ReadonlyMap<string, string>;

export function fieldGroups(text: string): FieldGroup[] {
  const groups: FieldGroup[] = [];
  for (const block of text.replace(/\r\n?/g, "\n").split(/\n[ \t]*\n/)) {
    const fields = new Map<string, string>();
    let last: string | undefined;
    for (const line of block.split("\n")) {
      if (/^[ \t]/.test(line) && last !== undefined) {
        fields.set(last, `${fields.get(last)} ${line.trim()}`);
        continue;
      }
      const colon = line.indexOf(":");
      if (colon <= 0) continue;
      last = line.slice(0, colon).trim().toLowerCase();
      if (!fields.has(last)) fields.set(last, line.slice(colon + 1).trim());
      else last = undefined;
    }
    if (fields.size > 0) groups.push(fields);
  }
  return groups;
}

/** The value after a type and ";" (RFC 3464 2.3.2 "rfc822; a@b", 2.3.6 "smtp; 550 ..."), or the whole value without one. */
export function typedValue(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const semicolon = value.indexOf(";");
  const typed = semicolon >= 0 && /^[A-Za-z0-9-]+$/.test(value.slice(0, semicolon).trim());
  return (typed ? value.slice(semicolon + 1) : value).trim().replace(/^<(.*)>$/, "$1").trim() || undefined;
}
