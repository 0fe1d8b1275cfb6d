import { type Reply, replyText } from "../core/reply.ts";
import type { AutomationRule, ReplyMatch } from "./rules.ts";

function matches(match: ReplyMatch, reply: Reply, text: string): boolean {
  return (
    (match.code === undefined || match.code === reply.code) &&
    (match.enhanced === undefined || match.enhanced === reply.enhanced) &&
    (match.text === undefined || text.toLowerCase().includes(match.text.replace(/\s+/g, " ").toLowerCase())) &&
    (match.regex === undefined || match.regex.test(text))
  );
}

/**
 * The automation rule a failure reply from `provider` calls for: the first
 * of that provider's rules that matches, else the first matching rule for
 * any destination. Text is matched against the whole reply on one line
 * ("421 4.7.28 Our system has detected ..."), so a phrase that the server
 * broke across lines of a multi-line reply still matches.
 */
export function matchAutomation(
  rules: readonly AutomationRule[],
  reply: Reply,
  provider: string | undefined,
): AutomationRule | undefined {
  if (reply.code < 400) return undefined;
  const text = replyText(reply).replace(/\s+/g, " ");
  const applies = (rule: AutomationRule) => matches(rule.match, reply, text);
  return (
    rules.find((rule) => provider !== undefined && rule.provider === provider && applies(rule)) ??
      rules.find((rule) => rule.provider === undefined && applies(rule))
  );
}
