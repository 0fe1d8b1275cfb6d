import { getMetricsFromIterator, type PromMetrics } from "prom2javascript";

/** One series of a family as the parser reads it: a value, or a histogram's buckets, count and sum. */
export type ParsedSeries = {
  readonly labels: Readonly<Record<string, string>>;
  readonly value?: number;
  readonly buckets?: Readonly<Record<string, number>>;
  readonly count?: number;
  readonly sum?: number;
};

/** Metrics text read by an independent parser (npm prom2javascript), which throws on a line it cannot read. */
export async function parseMetrics(text: string): Promise<PromMetrics> {
  return await getMetricsFromIterator(text.split("\n")[Symbol.iterator]());
}

/** The series of `name` whose labels include every one of `labels`. */
export function seriesOf(
  metrics: PromMetrics,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): ParsedSeries[] {
  const data = (metrics[name]?.data ?? []) as readonly ParsedSeries[];
  return data.filter((s) => Object.entries(labels).every(([label, value]) => s.labels[label] === value));
}

/** The one series of `name` with these labels, if there is one. */
export function sampleOf(
  metrics: PromMetrics,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): ParsedSeries | undefined {
  return seriesOf(metrics, name, labels)[0];
}

/** The sum of the values of `name`'s series whose labels include every one of `labels` (0: none). */
export function sumOf(metrics: PromMetrics, name: string, labels: Readonly<Record<string, string>> = {}): number {
  return seriesOf(metrics, name, labels).reduce((n, s) => n + (s.value ?? 0), 0);
}
