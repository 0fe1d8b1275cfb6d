import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { PYTHON } from "./peers.ts";

/**
 * Why dkimpy (Debian python3-dkim) cannot run here, or undefined when it can;
 * `modules` are the Python modules the test needs beside it.
 */
export function dkimpyMissing(modules: readonly string[], packages: string): string | undefined {
  if (!existsSync(PYTHON)) return `${PYTHON} is not installed`;
  const probe = spawnSync(PYTHON, ["-c", `import ${modules.join(", ")}`], { stdio: "ignore" });
  if (probe.status === 0) return undefined;
  const text = `${modules.join(", ")} not importable (Debian ${packages}; scripts/install-test-peers installs them)`;
  console.log(`[peers] skipping: ${text}`);
  return text;
}

/**
 * Python prelude: `dnsfunc` for dkimpy that reads TXT records from the test
 * DNS fixture, whose port is the script's first argument.
 */
export const FIXTURE_DNSFUNC = `
import sys, json, dkim, dns.resolver
r = dns.resolver.Resolver(configure=False)
r.nameservers = ['127.0.0.1']
r.port = int(sys.argv[1])
def dnsfunc(name, timeout=5):
    try:
        answer = r.resolve(name.decode() if isinstance(name, bytes) else name, 'TXT', lifetime=timeout)
    except Exception:
        return None
    return b''.join(answer[0].strings)
`;
