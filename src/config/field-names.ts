/**
 * The name a variable has in the configuration object: RELAY_ dropped, the
 * rest in camelCase (RELAY_MAX_CONNECTIONS_PER_IP is maxConnectionsPerIp,
 * RELAY_TLSRPT_INTERVAL is tlsrptInterval). Written once as a type and once
 * as the function that does the same at run time; a unit test holds them
 * together.
 */
type Pascal<S extends string> = S extends `${infer Head}_${infer Tail}`
  ? `${Capitalize<Lowercase<Head>>}${Pascal<Tail>}`
  : Capitalize<Lowercase<S>>;

export type FieldName<Variable extends string> = Variable extends `RELAY_${infer Rest}` ? Uncapitalize<Pascal<Rest>>
  : never;

export function fieldName<Variable extends `RELAY_${string}`>(variable: Variable): FieldName<Variable> {
  const words = variable.slice("RELAY_".length).toLowerCase().split("_");
  return words.map((word, i) => (i === 0 ? word : word.charAt(0).toUpperCase() + word.slice(1))).join("") as FieldName<
    Variable
  >;
}
