import type { DomainSummary } from "../core/queue-summary.ts";
import type { DestinationView } from "../http/queue.ts";
import { destinationState } from "../http/queue.ts";
import type { ChartedType, Rates, Series } from "./rates.ts";

/** What the overview shows: the queue now, and the event counts over time. */
export interface OverviewProps {
  readonly rates: Rates;
  readonly destinations: readonly DestinationView[];
  /** Pending recipients at domains no destination has taken mail for yet. */
  readonly unrouted: readonly DomainSummary[];
}

const THROUGHPUT: readonly ChartedType[] = ["received", "delivered"];
const OUTCOMES: readonly ChartedType[] = ["delivered", "deferred", "bounced", "expired", "suppressed", "complained"];

const sum = (values: readonly number[]) => values.reduce((a, b) => a + b, 0);

/** The counts as JSON inside a script element: `<` escaped, so no text in them can end the element. */
export function ratesJson(rates: Rates): string {
  return JSON.stringify(rates).replaceAll("<", "\\u003c");
}

function Chart(
  props: { id: string; title: string; window: "hour" | "day"; series: Series; types: readonly ChartedType[] },
) {
  const totals = props.types.map((type) => `${type} ${sum(props.series.counts[type])}`).join(", ");
  return (
    <figure class="chart" id={props.id} data-window={props.window} data-types={props.types.join(",")}>
      <figcaption>{props.title}</figcaption>
      <div class="plot" role="img" aria-label={`${props.title}: ${totals}`}></div>
      <p class="muted">Total: {totals}</p>
    </figure>
  );
}

function Card(props: { label: string; value: number; id: string }) {
  return (
    <div class="card">
      <div class="value" id={props.id}>{props.value.toLocaleString("en")}</div>
      <div class="label">{props.label}</div>
    </div>
  );
}

export function Overview(props: OverviewProps) {
  const { destinations, unrouted, rates } = props;
  const pending = [...destinations, ...unrouted];
  const queued = sum(pending.map((d) => d.queued));
  const deferred = sum(pending.map((d) => d.deferred));
  const inFlight = sum(destinations.map((d) => d.inFlight));
  const suspended = destinations.filter((d) => destinationState(d) === "suspended").length;
  return (
    <>
      <section aria-labelledby="queue-now">
        <h2 id="queue-now">Queue now</h2>
        <div class="cards">
          <Card id="queued" label="queued" value={queued} />
          <Card id="deferred" label="deferred" value={deferred} />
          <Card id="in-flight" label="in flight" value={inFlight} />
          <Card id="destinations" label="destinations" value={destinations.length} />
          <Card id="suspended" label="suspended" value={suspended} />
        </div>
      </section>
      <section aria-labelledby="rates-heading">
        <h2 id="rates-heading">Throughput and outcomes</h2>
        <div class="charts">
          <Chart
            id="hour-throughput"
            title="Last hour: throughput"
            window="hour"
            series={rates.hour}
            types={THROUGHPUT}
          />
          <Chart id="hour-outcomes" title="Last hour: outcomes" window="hour" series={rates.hour} types={OUTCOMES} />
          <Chart id="day-throughput" title="Last day: throughput" window="day" series={rates.day} types={THROUGHPUT} />
          <Chart id="day-outcomes" title="Last day: outcomes" window="day" series={rates.day} types={OUTCOMES} />
        </div>
        <script type="application/json" id="rates" dangerouslySetInnerHTML={{ __html: ratesJson(rates) }}></script>
      </section>
    </>
  );
}
