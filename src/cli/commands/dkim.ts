import type { Command } from "../command.ts";

const USAGE = `Usage:
  relay dkim keygen --domain DOMAIN [--selector S] [--algorithm rsa|ed25519] [--json]

Create a DKIM signing key for DOMAIN (added as a sending domain if new),
store it in the node's database and print the DNS TXT record to publish at
S._domainkey.DOMAIN. --algorithm: rsa (RSA-2048, default) or ed25519
(RFC 8463). --selector: default rsaYYYYMMDD / edYYYYMMDD.

The key signs at once when DOMAIN has no active key of that algorithm;
otherwise it waits, like a rotation, until its record is visible in DNS
("relay domains check DOMAIN", or the relay's periodic check).
The private key is never printed. --json prints {key, record}.

Options: --env-file FILE loads RELAY_* defaults from a file.`;

export const dkimCommand: Command = {
  name: "dkim",
  takesArguments: true,
  summary: "DKIM keys: keygen --domain D [--selector S] [--algorithm rsa|ed25519]",
  usage: USAGE,
  options: {
    domain: { type: "string" },
    selector: { type: "string" },
    algorithm: { type: "string" },
    json: { type: "boolean" },
  },
  // Loaded when it runs, as domains is (domains.ts).
  run: async (context) => (await import("./dkim-run.ts")).runDkim(context),
};
