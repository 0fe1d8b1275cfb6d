import type { Config } from "../config/load.ts";
import type { Clock } from "../core/clock.ts";
import type { Logger } from "../core/log.ts";
import type { SettingsStore } from "../queue/settings.ts";
import { formatShapingError, type ShapingError } from "../shaping/load.ts";
import { loadOperatorShaping } from "../shaping/shipped.ts";
import { type ShapingInForce, withVariables } from "./shaping-file.ts";

/** Where the operator's layer of the rules in force comes from. */
export type ShapingOrigin =
  | { readonly kind: "shipped" }
  | { readonly kind: "file"; readonly path: string }
  /** PUT /v1/shaping: the body as given, and when. */
  | { readonly kind: "api"; readonly text: string; readonly at: number };

export interface ShapingNow extends ShapingInForce {
  readonly origin: ShapingOrigin;
}

/** The settings row that keeps the rules given through the API. */
const SETTING = "shaping_rules";
/** What errors in a PUT body name as their file. */
const BODY = "PUT /v1/shaping";

const parse = (text: string) => loadOperatorShaping(text, BODY);

/**
 * The shaping rules in force, which the operator may replace while the
 * relay runs (PUT /v1/shaping). There is one operator layer over the
 * shipped rules: the last one given through the API (kept in the settings
 * table, so a restart keeps it), else RELAY_SHAPING_FILE as read at start;
 * the RELAY_DESTINATION_* variables stay over its default level either way.
 * A PUT body is a shaping file, refused whole (nothing changes) when it
 * holds any problem; DELETE returns to the file. Listeners hear of each change.
 */
export class ShapingSettings {
  private now: ShapingNow;
  private readonly listeners: (() => void)[] = [];
  /** Changes are applied one at a time, in the order they were stored. */
  private changes: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly config: Config,
    private readonly fromFile: ShapingNow,
    private readonly store: Pick<SettingsStore, "getSetting" | "setSetting" | "deleteSetting">,
    private readonly clock: Clock,
  ) {
    this.now = fromFile;
  }

  /**
   * The rules in force at start: `fromFile` (shapingInForce, which already
   * refused a bad file), unless rules given through the API are stored. Stored
   * rules that this version no longer accepts are logged and left aside.
   */
  static async open(
    config: Config,
    fromFile: ShapingInForce,
    store: Pick<SettingsStore, "getSetting" | "setSetting" | "deleteSetting">,
    clock: Clock,
    log: Logger,
  ): Promise<ShapingSettings> {
    const origin: ShapingOrigin = config.shapingFile === undefined
      ? { kind: "shipped" }
      : { kind: "file", path: config.shapingFile };
    const settings = new ShapingSettings(config, { ...fromFile, origin }, store, clock);
    const stored = await store.getSetting(SETTING);
    if (stored === undefined) return settings;
    const { text, at } = JSON.parse(stored) as { text: string; at: number };
    const loaded = parse(text);
    if (!loaded.ok) {
      log("error", "the shaping rules given through PUT /v1/shaping are no longer valid; they are not applied", {
        errors: loaded.errors.map(formatShapingError),
        applied: origin.kind === "file" ? "RELAY_SHAPING_FILE" : "the shipped rules",
      });
      return settings;
    }
    if (origin.kind === "file") {
      log("warn", "RELAY_SHAPING_FILE is not applied: the rules given through PUT /v1/shaping are", {
        given_at: new Date(at).toISOString(),
        hint: "DELETE /v1/shaping returns to the file",
      });
    }
    settings.now = { ...withVariables(config, loaded), origin: { kind: "api", text, at } };
    return settings;
  }

  current(): ShapingNow {
    return this.now;
  }

  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  /** Replace the operator's layer with `text` (a shaping file); with any problem in it, nothing changes. */
  put(text: string): Promise<{ readonly ok: true } | { readonly ok: false; readonly errors: readonly ShapingError[] }> {
    const loaded = parse(text);
    if (!loaded.ok) return Promise.resolve(loaded);
    return this.change(async () => {
      const at = this.clock.now();
      await this.store.setSetting(SETTING, JSON.stringify({ text, at }));
      return { ...withVariables(this.config, loaded), origin: { kind: "api", text, at } };
    }).then(() => ({ ok: true }) as const);
  }

  /** Forget the rules given through the API: RELAY_SHAPING_FILE (or the shipped rules) apply again. */
  reset(): Promise<void> {
    return this.change(async () => {
      await this.store.deleteSetting(SETTING);
      return this.fromFile;
    });
  }

  /**
   * In a fleet: take up the rules another node stored (its PUT or DELETE),
   * as that node did. Rules this version does not accept stay aside, as at start.
   */
  refresh(): Promise<void> {
    return this.change(async () => {
      const stored = await this.store.getSetting(SETTING);
      if (stored === undefined) return this.now.origin.kind === "api" ? this.fromFile : this.now;
      const { text, at } = JSON.parse(stored) as { text: string; at: number };
      if (this.now.origin.kind === "api" && this.now.origin.at === at) return this.now;
      const loaded = parse(text);
      return loaded.ok ? { ...withVariables(this.config, loaded), origin: { kind: "api", text, at } } : this.now;
    });
  }

  private change(store: () => Promise<ShapingNow>): Promise<void> {
    const done = this.changes.then(async () => {
      const next = await store();
      if (next === this.now) return;
      this.now = next;
      for (const listener of this.listeners) listener();
    });
    this.changes = done.catch(() => undefined);
    return done;
  }
}
