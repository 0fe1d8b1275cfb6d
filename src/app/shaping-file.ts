import { readFileSync } from "node:fs";
import type { Config } from "../config/load.ts";
import { formatDuration } from "../core/duration.ts";
import { UsageError } from "../core/errors.ts";
import { withDefaultOverrides } from "../shaping/default-overrides.ts";
import { formatShapingError, type ShapingDocument } from "../shaping/load.ts";
import { LIMIT_FILE_NAMES, type LimitName, type Limits, type ShapingRules } from "../shaping/rules.ts";
import { loadOperatorShaping, shippedShaping } from "../shaping/shipped.ts";

/** The shaping rules delivery follows, and the same as the file's form (what `GET /v1/shaping` shows). */
export interface ShapingInForce {
  readonly rules: ShapingRules;
  readonly document: ShapingDocument;
}

/**
 * The rules in force, each layer over the one before: the shipped rules,
 * the operator's RELAY_SHAPING_FILE, then the RELAY_DESTINATION_*,
 * RELAY_*_PER_* and RELAY_RETRY_SCHEDULE variables over the default level
 * (docs/shaping.md). A file that cannot be read, or holds problems, is a
 * UsageError listing them all.
 */
export function shapingInForce(config: Config): ShapingInForce {
  return withVariables(
    config,
    config.shapingFile === undefined ? shippedShaping() : operatorShaping(config.shapingFile),
  );
}

/** The RELAY_DESTINATION_* and RELAY_*_PER_* variables over the default level of `loaded`. */
export function withVariables(config: Config, loaded: ShapingInForce): ShapingInForce {
  const overrides: Limits = {
    connections: config.destinationMaxConnections,
    messagesPerConnection: config.messagesPerConnection,
    recipientsPerTransaction: config.recipientsPerTransaction,
    idleTimeout: config.destinationIdleTimeout,
    retrySchedule: config.retrySchedule,
  };
  // The same values in the file's form, so that the document shows what applies.
  const inFileForm = Object.entries(overrides)
    .filter(([, value]) => value !== undefined)
    .map(([name, value]) => [LIMIT_FILE_NAMES[name as LimitName], inFileFormOf(name as LimitName, value)]);
  const document = {
    ...loaded.document,
    default: { ...(loaded.document.default as object), ...Object.fromEntries(inFileForm) },
  };
  return { rules: withDefaultOverrides(loaded.rules, overrides), document };
}

/** A limit's value as the file writes it: durations as "2s", counts as they are. */
function inFileFormOf(name: LimitName, value: unknown): unknown {
  if (name === "idleTimeout") return formatDuration(value as number);
  if (name === "retrySchedule") return (value as readonly number[]).map(formatDuration);
  return value;
}

function operatorShaping(path: string) {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new UsageError([`RELAY_SHAPING_FILE: cannot read ${path}: ${(error as Error).message}`]);
  }
  const loaded = loadOperatorShaping(text, path);
  if (!loaded.ok) {
    throw new UsageError(loaded.errors.map((e) => `RELAY_SHAPING_FILE: ${formatShapingError(e)}`));
  }
  return loaded;
}
