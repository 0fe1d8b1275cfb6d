// The text itself, not Bun's YAML loader: the same import works under Deno and in the compiled binary.
import shippedText from "./default-rules.yaml" with { type: "text" };
import { formatShapingError, loadShapingRules, type ShapingLoad } from "./load.ts";

/** The rules shipped inside the binary: default-rules.yaml. */
export function shippedShaping(): Extract<ShapingLoad, { ok: true }> {
  const loaded = loadShapingRules(shippedText as string, "default-rules.yaml");
  // The shipped file is tested; failing here is a broken build, not bad input.
  if (!loaded.ok) {
    throw new Error(`the shipped shaping rules are invalid:\n${loaded.errors.map(formatShapingError).join("\n")}`);
  }
  return loaded;
}

/** An operator's file (RELAY_SHAPING_FILE) laid over the shipped rules; `refuse` as loadShapingRules takes it. */
export function loadOperatorShaping(
  text: string,
  fileName: string,
): ShapingLoad {
  return loadShapingRules(text, fileName, shippedShaping().document);
}
