/**
 * An operator's shaping file laid over the shipped one, as parsed data
 * (before validation, so that what is checked is what applies): maps merge
 * key by key at every depth, a list or a value replaces the one below, and
 * null removes it. Automation rules are the exception: one is replaced
 * whole (its match and action belong together), and the operator's rules
 * come first, so they are tried before the shipped ones.
 */

/** A YAML or JSON map, as parsed: an object that is no list. */
export const isMap = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

function merge(below: unknown, above: unknown): unknown {
  if (!isMap(below) || !isMap(above)) return above;
  // fromEntries defines own properties, so a key such as "__proto__" stays a key.
  const merged = new Map(Object.entries(below));
  for (const [key, value] of Object.entries(above)) {
    if (value === null) merged.delete(key);
    else merged.set(key, merge(merged.get(key), value));
  }
  return Object.fromEntries(merged);
}

export function overlay(below: Readonly<Record<string, unknown>>, above: unknown): unknown {
  // An empty file (or one of comments only) changes nothing.
  if (above === null || above === undefined) return below;
  if (!isMap(above)) return above;
  const { automation: ownRules, ...rest } = above;
  const merged = merge(below, rest) as Record<string, unknown>;
  if (ownRules === undefined) return merged;
  const { automation: shippedRules, ...others } = merged;
  if (ownRules === null) return others;
  if (!isMap(ownRules)) return { ...others, automation: ownRules };
  const shipped = isMap(shippedRules) ? shippedRules : {};
  const rules = [
    ...Object.entries(ownRules).filter(([, rule]) => rule !== null),
    ...Object.entries(shipped).filter(([name]) => !Object.hasOwn(ownRules, name)),
  ];
  return { ...others, automation: Object.fromEntries(rules) };
}
