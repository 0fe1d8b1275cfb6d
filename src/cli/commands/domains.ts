import type { Command } from "../command.ts";

const USAGE = `Usage:
  relay domains add DOMAIN [--selector S] [--algorithm rsa|ed25519|both] [--json]
  relay domains list [--json]
  relay domains show DOMAIN [--json]
  relay domains check DOMAIN [--json]
  relay domains rotate DOMAIN [--json]

Sending domains: the relay DKIM-signs mail whose From header is at exactly
one of them (a key for example.com does not sign news.example.com).

  add      create the domain's DKIM key(s) and print every DNS record to
           publish: SPF, DKIM, DMARC, the return path (with
           RELAY_BOUNCE_DOMAIN), and the optional MTA-STS and TLS-RPT.
           --algorithm: rsa (RSA-2048, the default), ed25519, or both (an
           RSA and an Ed25519 signature on every message; the Ed25519 key's
           selector is S-ed25519 when --selector S is given).
           --selector: default rsaYYYYMMDD / edYYYYMMDD.
           A running relay picks the new keys up within seconds.
  list     one domain a line: keys (selector/algorithm/state) and the last
           check.
  show     the records to publish again, and the last check.
  check    look every record up in DNS (RELAY_DNS_SERVERS): PASS, FAIL or
           WARN each, with the fix, and what a receiver would conclude (SPF
           for RELAY_SOURCE_IP, DKIM, DMARC, return-path alignment). A
           rotated key waiting for its record starts signing once it is
           visible. The first check that finds the active key's DKIM
           record marks the domain verified, for good: with
           RELAY_SENDER_POLICY=verified (the default) SMTP AUTH users and
           API keys may send From it from then on. The relay also checks
           by itself every RELAY_DOMAIN_CHECK_INTERVAL.
           Exit status 1 when a required record fails.
  rotate   new DKIM key(s) with a new selector; the relay keeps signing with
           the current key until the new record is visible in DNS, then
           keeps listing the old record as still needed for
           RELAY_DKIM_ROTATION_GRACE (default 7d).

--json prints the same as JSON. Private keys are never printed.
Options: --env-file FILE loads RELAY_* defaults from a file.`;

export const domainsCommand: Command = {
  name: "domains",
  takesArguments: true,
  summary: "sending domains: add D [--selector S] [--algorithm rsa|ed25519|both], list, show D, check D, rotate D",
  usage: USAGE,
  options: {
    selector: { type: "string" },
    algorithm: { type: "string" },
    json: { type: "boolean" },
  },
  // Loaded when it runs: the DKIM and DNS code it needs (mailauth above all) would slow every other command's start.
  run: async (context) => (await import("./domains-run.ts")).runDomains(context),
};
