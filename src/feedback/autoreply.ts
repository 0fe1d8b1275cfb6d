/**
 * Automatic replies (RFC 3834) told apart from bounces: they come back to
 * the return path too, but say nothing about whether the mail arrived.
 */
type Header = (name: string) => string | undefined;

const OUT_OF_OFFICE =
  /^(auto(matic)?[ -]?(reply|response|antwort)|out of (the )?office|away from (the )?office|on vacation|vacation reply|abwesenheitsnotiz|r[ée]ponse automatique)\b|^auto:/i;

/** Signs no bounce carries: the headers autoresponders add, or an out-of-office subject. */
export function strongAutoreplySignal(header: Header, subject: string | undefined): string | undefined {
  if (header("x-autoreply") !== undefined) return "X-Autoreply";
  if (header("x-autorespond") !== undefined) return "X-Autorespond";
  if (/^auto[_-]reply$/i.test(header("precedence")?.trim() ?? "")) return "Precedence: auto_reply";
  if (subject && OUT_OF_OFFICE.test(subject.trim())) return `Subject: ${subject.trim()}`;
  return undefined;
}

/**
 * Signs a bounce may carry too (RFC 3834 5 asks report generators for
 * Auto-Submitted as well): weighed only once no bounce was found.
 */
export function autoreplySignal(header: Header): string | undefined {
  const submitted = header("auto-submitted")?.trim().toLowerCase();
  if (submitted !== undefined && submitted !== "no") return `Auto-Submitted: ${submitted}`;
  const precedence = header("precedence")?.trim().toLowerCase();
  if (precedence === "bulk" || precedence === "junk") return `Precedence: ${precedence}`;
  return undefined;
}
