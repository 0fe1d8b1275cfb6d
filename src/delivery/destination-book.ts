import type { SettingsStore } from "../queue/settings.ts";
import type { DestinationShaping } from "./shaping.ts";

/** What the planner said of a destination: its key, public name, MX hosts and shaping. */
export interface DestinationInfo {
  readonly key: string;
  /** The name the API and the CLI know it by (planner.ts, destinationName). */
  readonly name: string;
  /** In order of preference; none for the sandbox. */
  readonly mxHosts: readonly string[];
  /** Under the rules in force now; undefined once its domain has a destination of another key. */
  readonly shaping: () => DestinationShaping | undefined;
}

/** An operator's suspension of a destination: nothing is attempted there until it ends. */
export interface Suspension {
  readonly until: number;
  readonly name: string;
  /** The destination's recipient domains when it was suspended. */
  readonly domains: readonly string[];
}

/** A destination the scheduler has routed mail to, as the queue summary and the operator's steering see it. */
export interface DestinationEntry {
  info: DestinationInfo;
  /** Recipient domains routed to it, the most recent last. */
  readonly domains: Set<string>;
  /** The last outcome's reply, and when. */
  lastReply?: { readonly text: string; readonly at: number };
}

/** Destinations remembered for the summary, the least recently routed forgotten first. */
const MAX_ENTRIES = 10_000;
/** Recipient domains remembered per destination, the most recent (an MX site may host thousands). */
const MAX_DOMAINS = 100;
/** The settings row that keeps suspensions across a restart. */
const SUSPENSIONS_SETTING = "destination_suspensions";

/**
 * The destinations the scheduler knows, by key, with their recipient domains
 * and last reply, and the operator's suspensions, kept in the settings table
 * so that a restart does not lift them. Memory is bounded: at most
 * MAX_ENTRIES destinations and MAX_DOMAINS domains each.
 */
export class DestinationBook {
  private readonly entries = new Map<string, DestinationEntry>();
  private readonly suspensions = new Map<string, Suspension>();

  constructor(private readonly store: Pick<SettingsStore, "getSetting" | "setSetting">) {}

  /** Read the suspensions kept before a restart; those over are dropped. */
  async load(now: number): Promise<void> {
    const stored = await this.store.getSetting(SUSPENSIONS_SETTING);
    if (stored === undefined) return;
    for (const [key, suspension] of Object.entries(JSON.parse(stored) as Record<string, Suspension>)) {
      if (suspension.until > now) this.suspensions.set(key, suspension);
    }
  }

  /** A destination was just planned for `domain`: remember it (as the most recent) and the domain. */
  note(info: DestinationInfo, domain: string): DestinationEntry {
    const entry = this.entries.get(info.key) ?? { info, domains: new Set<string>() };
    entry.info = info;
    entry.domains.delete(domain);
    entry.domains.add(domain);
    if (entry.domains.size > MAX_DOMAINS) entry.domains.delete(entry.domains.values().next().value!);
    this.entries.delete(info.key);
    this.entries.set(info.key, entry);
    if (this.entries.size > MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
    return entry;
  }

  entry(key: string): DestinationEntry | undefined {
    return this.entries.get(key);
  }

  all(): IterableIterator<DestinationEntry> {
    return this.entries.values();
  }

  /** The key of the destination with this public name, among those known or suspended. */
  keyNamed(name: string): string | undefined {
    for (const entry of this.entries.values()) if (entry.info.name === name) return entry.info.key;
    for (const [key, suspension] of this.suspensions) if (suspension.name === name) return key;
    return undefined;
  }

  /** The suspension in force for a key at `now`; one that is over is forgotten. */
  suspension(key: string, now: number): Suspension | undefined {
    const suspension = this.suspensions.get(key);
    if (suspension === undefined || suspension.until > now) return suspension;
    this.suspensions.delete(key);
    return undefined;
  }

  /** Every suspension in force, by key. */
  suspended(now: number): [string, Suspension][] {
    return [...this.suspensions.keys()].flatMap((key) => {
      const suspension = this.suspension(key, now);
      return suspension ? [[key, suspension] as [string, Suspension]] : [];
    });
  }

  async suspend(key: string, suspension: Suspension): Promise<void> {
    this.suspensions.set(key, suspension);
    await this.save();
  }

  /** Lift a suspension; returns it, or undefined when there was none. */
  async resume(key: string): Promise<Suspension | undefined> {
    const suspension = this.suspensions.get(key);
    if (suspension === undefined) return undefined;
    this.suspensions.delete(key);
    await this.save();
    return suspension;
  }

  private save(): Promise<void> {
    return this.store.setSetting(SUSPENSIONS_SETTING, JSON.stringify(Object.fromEntries(this.suspensions)));
  }
}
