/**
 * Metrics and their Prometheus text exposition (format 0.0.4,
 * prometheus.io/docs/instrumenting/exposition_formats): counters, gauges and
 * histograms with fixed label names. Written here rather than taken from
 * prom-client: the relay needs these three kinds and the text format only,
 * and none of that library's Node-specific default collectors.
 */

/** One value per label name, in the order the metric names them. */
export type LabelValues<L extends string> = Readonly<Record<L, string>>;

/** What a gauge reads at each scrape: its series, each with its labels. */
export type GaugeReading<L extends string> = Iterable<readonly [LabelValues<L>, number]>;

export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

interface Family {
  readonly name: string;
  /** The text of the family, HELP and TYPE lines first; none when it has no series now. */
  expose(): Promise<string[]>;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** HELP text: backslash and line feed escaped. */
const escapeHelp = (text: string) => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
/** Label values: backslash, double quote and line feed escaped. */
const escapeLabel = (text: string) => text.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

export function formatNumber(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

function formatLabels(pairs: readonly (readonly [string, string])[]): string {
  if (pairs.length === 0) return "";
  return `{${pairs.map(([name, value]) => `${name}="${escapeLabel(value)}"`).join(",")}}`;
}

function header(name: string, help: string, type: string): string[] {
  return [`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`];
}

/** Series kept by their label values, in the order the metric names its labels. */
class Series<L extends string, V> {
  readonly #byKey = new Map<string, { values: readonly string[]; value: V }>();

  constructor(readonly labelNames: readonly L[], private readonly fresh: () => V) {}

  get(labels: LabelValues<L>): V {
    const values = this.labelNames.map((name) => labels[name]);
    const key = values.join("\u0000");
    let series = this.#byKey.get(key);
    if (!series) this.#byKey.set(key, series = { values, value: this.fresh() });
    return series.value;
  }

  *entries(): Iterable<readonly [readonly (readonly [L, string])[], V]> {
    for (const { values, value } of this.#byKey.values()) {
      yield [this.labelNames.map((name, i) => [name, values[i]!] as const), value];
    }
  }

  get size(): number {
    return this.#byKey.size;
  }
}

export class Counter<L extends string = never> implements Family {
  readonly #series: Series<L, { value: number }>;

  constructor(readonly name: string, readonly help: string, labelNames: readonly L[]) {
    this.#series = new Series(labelNames, () => ({ value: 0 }));
  }

  inc(labels: LabelValues<L>, by = 1): void {
    this.#series.get(labels).value += by;
  }

  /** The count so far of one series (0 when it has none yet). */
  value(labels: LabelValues<L>): number {
    return this.#series.get(labels).value;
  }

  expose(): Promise<string[]> {
    if (this.#series.size === 0) return Promise.resolve([]);
    const lines = header(this.name, this.help, "counter");
    for (const [labels, { value }] of this.#series.entries()) {
      lines.push(`${this.name}${formatLabels(labels)} ${formatNumber(value)}`);
    }
    return Promise.resolve(lines);
  }
}

/**
 * A gauge, or a counter kept elsewhere, read when scraped: the value is
 * wherever it lives (a listener, the queue), never copied here.
 */
export class Reading<L extends string = never> implements Family {
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly L[],
    private readonly read: () => GaugeReading<L> | Promise<GaugeReading<L>>,
    private readonly type: "gauge" | "counter" = "gauge",
  ) {}

  async expose(): Promise<string[]> {
    const lines: string[] = [];
    for (const [labels, value] of await this.read()) {
      const pairs = this.labelNames.map((name) => [name, labels[name]] as const);
      lines.push(`${this.name}${formatLabels(pairs)} ${formatNumber(value)}`);
    }
    return lines.length === 0 ? [] : [...header(this.name, this.help, this.type), ...lines];
  }
}

interface HistogramSeries {
  /** Observations per bucket, not cumulative: bucket i counts values <= bounds[i] and > bounds[i-1]. */
  readonly counts: number[];
  sum: number;
  count: number;
}

export class Histogram<L extends string = never> implements Family {
  readonly #series: Series<L, HistogramSeries>;

  /** `bounds`: the upper bounds of the buckets, ascending; +Inf is added. */
  constructor(
    readonly name: string,
    readonly help: string,
    labelNames: readonly L[],
    private readonly bounds: readonly number[],
  ) {
    if (labelNames.includes("le" as L)) throw new Error(`histogram ${name}: "le" is the bucket label`);
    if (bounds.some((b, i) => i > 0 && b <= bounds[i - 1]!)) {
      throw new Error(`histogram ${name}: bucket bounds must ascend`);
    }
    this.#series = new Series(labelNames, () => ({ counts: bounds.map(() => 0), sum: 0, count: 0 }));
  }

  observe(labels: LabelValues<L>, value: number): void {
    const series = this.#series.get(labels);
    const bucket = this.bounds.findIndex((bound) => value <= bound);
    if (bucket >= 0) series.counts[bucket]! += 1;
    series.sum += value;
    series.count += 1;
  }

  expose(): Promise<string[]> {
    if (this.#series.size === 0) return Promise.resolve([]);
    const lines = header(this.name, this.help, "histogram");
    for (const [labels, series] of this.#series.entries()) {
      let cumulative = 0;
      this.bounds.forEach((bound, i) => {
        cumulative += series.counts[i]!;
        lines.push(`${this.name}_bucket${formatLabels([...labels, ["le", formatNumber(bound)]])} ${cumulative}`);
      });
      lines.push(`${this.name}_bucket${formatLabels([...labels, ["le", "+Inf"]])} ${series.count}`);
      lines.push(`${this.name}_sum${formatLabels(labels)} ${formatNumber(series.sum)}`);
      lines.push(`${this.name}_count${formatLabels(labels)} ${series.count}`);
    }
    return Promise.resolve(lines);
  }
}

/** The metrics of one process, exposed together. */
export class Registry {
  readonly #families = new Map<string, Family>();

  counter<L extends string = never>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    return this.add(new Counter(name, help, labelNames), labelNames);
  }

  gauge<L extends string = never>(
    name: string,
    help: string,
    labelNames: readonly L[],
    read: () => GaugeReading<L> | Promise<GaugeReading<L>>,
  ): Reading<L> {
    return this.add(new Reading(name, help, labelNames, read), labelNames);
  }

  /** A counter that something else keeps (a listener's count of connections), read when scraped. */
  counterReading<L extends string = never>(
    name: string,
    help: string,
    labelNames: readonly L[],
    read: () => GaugeReading<L>,
  ): Reading<L> {
    return this.add(new Reading(name, help, labelNames, read, "counter"), labelNames);
  }

  histogram<L extends string = never>(
    name: string,
    help: string,
    labelNames: readonly L[],
    bounds: readonly number[],
  ): Histogram<L> {
    return this.add(new Histogram(name, help, labelNames, bounds), labelNames);
  }

  /** Every family in the text format, in the order they were made; a gauge that cannot be read now is left out. */
  async expose(onError: (name: string, error: unknown) => void = () => {}): Promise<string> {
    const parts = await Promise.all([...this.#families.values()].map((family) =>
      family.expose().catch((error) => {
        onError(family.name, error);
        return [];
      })
    ));
    return parts.flat().map((line) => `${line}\n`).join("");
  }

  private add<F extends Family>(family: F, labelNames: readonly string[]): F {
    if (!NAME.test(family.name)) throw new Error(`metric name ${JSON.stringify(family.name)} is not valid`);
    const bad = labelNames.find((l) => !LABEL.test(l) || l.startsWith("__"));
    if (bad !== undefined) throw new Error(`metric ${family.name}: label name ${JSON.stringify(bad)} is not valid`);
    if (this.#families.has(family.name)) throw new Error(`metric ${family.name} is registered twice`);
    this.#families.set(family.name, family);
    return family;
  }
}
