/** Jazzer.js target (scripts/fuzz.ts): a message at the bounce domain gives a Feedback, or an Error the receiver logs. */
import { fieldGroups, typedValue } from "../../src/feedback/fields.ts";
import { readFeedback } from "../../src/feedback/read.ts";
import { textBounce } from "../../src/feedback/text-bounce.ts";
import { check } from "./check.ts";

const STATUS = /^[245]\.\d{1,3}\.\d{1,3}$/;

export async function fuzz(data: Buffer): Promise<void> {
  const text = data.toString("utf8");
  for (const group of fieldGroups(text)) for (const value of group.values()) typedValue(value);
  const found = textBounce(text, "", undefined);
  for (const r of found?.recipients ?? []) check(r.status === undefined || STATUS.test(r.status), "status");
  let feedback;
  try {
    feedback = await readFeedback(new Uint8Array(data));
  } catch (error) {
    check(error instanceof Error, "rejected with a non-Error");
    return;
  }
  check(["bounce", "complaint", "autoreply", "unrecognized"].includes(feedback.kind), "kind");
}
