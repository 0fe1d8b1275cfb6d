/**
 * The macros (Sendmail's name for facts about the session) a milter reads
 * before each step, and the common ones milters such as rspamd, OpenDKIM
 * and clamav-milter look for. Postfix's defaults (milter_*_macros) choose
 * the same names for the same steps.
 */

export type Macros = Readonly<Record<string, string>>;

/** The macros for each step; the session adds {mail_addr} and {rcpt_addr} itself. */
export interface StageMacros {
  readonly connect?: Macros;
  readonly helo?: Macros;
  readonly mail?: Macros;
  readonly rcpt?: Macros;
  readonly data?: Macros;
  readonly eoh?: Macros;
  readonly eom?: Macros;
}

export interface MacroFacts {
  /** `j`: this MTA's host name. */
  readonly hostname: string;
  /** `{daemon_name}`: which listener took the message (e.g. "smtp", "http"). */
  readonly daemonName: string;
  /** `{client_addr}`: the submitter's IP address. */
  readonly clientAddress?: string;
  /** `{client_name}`: its host name, or the address in brackets. */
  readonly clientName?: string;
  /** `{auth_authen}`: the authenticated user or API key, when there is one. */
  readonly authenticatedAs?: string;
  /** `i`: the queue id, once known. */
  readonly queueId?: string;
}

/** The common macros, each at the step where Sendmail and Postfix send it. */
export function commonMacros(facts: MacroFacts): StageMacros {
  const defined = (entries: Record<string, string | undefined>): Macros =>
    Object.fromEntries(Object.entries(entries).filter((entry): entry is [string, string] => entry[1] !== undefined));
  const queueId = defined({ i: facts.queueId });
  return {
    connect: defined({
      j: facts.hostname,
      "{daemon_name}": facts.daemonName,
      "{client_addr}": facts.clientAddress,
      "{client_name}": facts.clientName,
    }),
    mail: defined({ i: facts.queueId, "{auth_authen}": facts.authenticatedAs }),
    data: queueId,
    eoh: queueId,
    eom: queueId,
  };
}

/** Only the names the milter asked for at that stage (SMFIR_SETSYMLIST), or all when it did not ask. */
export function chosenMacros(macros: Macros, wanted: readonly string[] | undefined): Macros {
  if (!wanted) return macros;
  const bare = (name: string) => name.replace(/^\{(.*)\}$/, "$1");
  const names = new Set(wanted.map(bare));
  return Object.fromEntries(Object.entries(macros).filter(([name]) => names.has(bare(name))));
}
