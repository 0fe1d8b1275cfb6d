import type { Clock } from "../../core/clock.ts";

/** The label of a domain whose MX hosts no provider of the shaping rules runs, or whose lookup failed. */
export const OTHER_PROVIDER = "other";

/** How long a domain's provider is remembered: the rules (PUT /v1/shaping) and MX records change seldom. */
const REMEMBER_MS = 10 * 60_000;
/** Domains remembered at most; the oldest is forgotten first. */
const MAX_REMEMBERED = 10_000;
/** Lookups run at once, at most. */
const PARALLEL_LOOKUPS = 16;

/**
 * The provider label of recipient domains: the name of the shaping rules'
 * provider whose MX hosts serve the domain, else "other". The label's values
 * are the rules' provider names and "other", never a domain, so a metric
 * labelled with it has a bounded number of series however many domains the
 * relay sends to. Each domain is looked up once in a while, not per event.
 */
export class ProviderLabels {
  readonly #known = new Map<string, { label: string; until: number }>();

  constructor(
    /** The provider serving a domain (the routing delivery does: MX or static route); undefined: none the rules know. */
    private readonly lookup: (domain: string) => Promise<string | undefined>,
    private readonly clock: Clock,
  ) {}

  /** The label of each domain; a lookup that fails gives "other" this time and is tried again next time. */
  async of(domains: Iterable<string>): Promise<Map<string, string>> {
    const now = this.clock.now();
    const labels = new Map<string, string>();
    const unknown: string[] = [];
    for (const domain of new Set(domains)) {
      const known = this.#known.get(domain);
      if (known && known.until > now) labels.set(domain, known.label);
      else unknown.push(domain);
    }
    for (let i = 0; i < unknown.length; i += PARALLEL_LOOKUPS) {
      await Promise.all(
        unknown.slice(i, i + PARALLEL_LOOKUPS).map(async (domain) => {
          try {
            const label = (await this.lookup(domain)) ?? OTHER_PROVIDER;
            this.remember(domain, label, now);
            labels.set(domain, label);
          } catch {
            labels.set(domain, OTHER_PROVIDER);
          }
        }),
      );
    }
    return labels;
  }

  private remember(domain: string, label: string, now: number): void {
    this.#known.delete(domain);
    this.#known.set(domain, { label, until: now + REMEMBER_MS });
    if (this.#known.size > MAX_REMEMBERED) this.#known.delete(this.#known.keys().next().value!);
  }
}
