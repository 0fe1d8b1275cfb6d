import { createHash } from "node:crypto";
import { reply } from "../core/reply.ts";
import type { Logger } from "../core/log.ts";
import { classifyReply, classifyTransportError } from "./classify.ts";
import { type MtaSts, type StsResult, tlsRequirement } from "./mta-sts/index.ts";
import { type HostNames, requireTlsFor, requireTlsKey } from "./requiretls.ts";
import type { ShapingRules } from "../shaping/rules.ts";
import type { RouteResult, TargetHost } from "./route.ts";
import { type SandboxTransport, SIMULATOR_DOMAIN } from "./sandbox.ts";
import type { Plan } from "./plan.ts";
import { destinationShaping, liveShaping, sandboxShaping } from "./shaping.ts";
import { SmtpTransport, type SmtpTransportDeps, type TlsRequirement } from "./smtp-transport.ts";
import { reportPolicyOf } from "./tls-report/policy.ts";
import type { TlsRule } from "./tls-rule.ts";
import type { TranscriptSource } from "../smtp/protocol/index.ts";

export interface PlannerDeps {
  readonly route: (domain: string) => Promise<RouteResult>;
  /** RELAY_SANDBOX: nothing leaves the node. */
  readonly sandbox: boolean;
  readonly sandboxTransport: SandboxTransport;
  /** Everything the SMTP transport needs but its TLS policy and recipients per transaction, decided per destination. */
  readonly smtp: Omit<SmtpTransportDeps, "tlsFor" | "requireTls" | "maxRecipients">;
  /**
   * Traffic shaping: each destination's limits and retry schedule, from its
   * source IP, recipient domain and MX hosts, under the rules in force when
   * asked (they change without a restart: PUT /v1/shaping); mail that has
   * no destination follows the default level's schedule.
   */
  readonly shaping: () => ShapingRules;
  /** MTA-STS (RFC 8461) policy discovery for MX routes; absent: off (RELAY_MTA_STS=false). */
  readonly mtaSts?: Pick<MtaSts, "policyFor">;
  /**
   * Whether a static route (RELAY_ROUTES) serves the domain, or the domain
   * is an address literal (route.ts, chosenWithoutMx): its host is not the
   * domain's MX, so the domain's MTA-STS policy says nothing about it and is
   * not looked up.
   */
  readonly staticRoute?: (domain: string) => boolean;
  readonly log?: Logger;
  /** An operator's SMTP trace: where a connection of the destination named so writes its transcript, if anywhere. */
  readonly trace?: (destination: string, host: TargetHost, address: string) => TranscriptSource;
}

/** Domains whose last MTA-STS problem was logged, so that each is logged once, not at every attempt. */
const MAX_REMEMBERED_PROBLEMS = 10_000;

/**
 * Domain and TLS rule to destination. The destination key is the set of MX
 * hosts (MX rollup): every domain hosted at the same provider shares one
 * queue, one pool and one set of limits. A domain with an MTA-STS policy in
 * force (testing or enforce) gets the policy in its key too, so that mail for
 * an enforce domain never shares a pool, nor a connection, with mail held to
 * a weaker rule at the same MX; domains with the same policy (mode and mx
 * patterns) still share one. REQUIRETLS mail (RFC 8689) gets a key of its
 * own in the same way: its sessions are held to RFC 8689 4.2.1 and no other
 * session carries it. The destination's limits come from the shaping rules,
 * worked out here, when its plan is made: a change of MX hosts is a new
 * destination with limits of its own (see shaping.ts for how the key keeps
 * domains whose rules differ apart).
 */
export function createPlanner(deps: PlannerDeps): (domain: string, rule: TlsRule) => Promise<Plan> {
  const log = deps.log ?? (() => undefined);
  const defaultRetry = () => deps.shaping().default.retrySchedule;
  const problems = new Map<string, string>();
  const noteProblem = (domain: string, sts: StsResult) => {
    const problem = sts.problem;
    if (problem === undefined) {
      problems.delete(domain);
      return;
    }
    if (problems.get(domain) === problem) return;
    problems.delete(domain);
    problems.set(domain, problem);
    if (problems.size > MAX_REMEMBERED_PROBLEMS) problems.delete(problems.keys().next().value!);
    log("warn", "MTA-STS policy problem", { domain, mode: sts.mode, problem });
  };

  /** RFC 8689 4.2.1 for one domain's hosts; see requiretls.ts. */
  /** A destination for these hosts, under the shaping rules for the domain. */
  const destination = (
    domain: string,
    hosts: readonly TargetHost[],
    key: string,
    smtp: Pick<SmtpTransportDeps, "tlsFor" | "requireTls">,
  ): Extract<Plan, { kind: "destination" }> => {
    const mxHosts = hosts.map((h) => h.name);
    const target = { sourceIp: deps.smtp.sourceIp, recipientDomain: domain, mxHosts };
    const shaping = destinationShaping(deps.shaping(), target);
    const live = liveShaping(deps.shaping, target, shaping);
    const fullKey = `${key}${shaping.keySuffix}`;
    const name = destinationName(mxHosts[0] ?? domain, fullKey);
    const trace = deps.trace;
    return {
      kind: "destination",
      key: fullKey,
      name,
      mxHosts,
      limits: shaping.limits,
      pacing: { messages: shaping.messageRate, connections: shaping.connectionRate },
      recipientsPerTransaction: shaping.recipientsPerTransaction,
      steering: { ...(shaping.provider === undefined ? {} : { provider: shaping.provider }), own: shaping.own },
      retry: shaping.retry,
      shaping: live,
      // Read at each connection, so that a change of the rules applies to the next one.
      transport: () =>
        new SmtpTransport(hosts, {
          ...deps.smtp,
          ...smtp,
          maxRecipients: () => (live() ?? shaping).recipientsPerTransaction,
          ...(trace ? { transcript: (host: TargetHost, address: string) => trace(name, host, address) } : {}),
        }),
    };
  };

  const requireTlsPlan = async (domain: string, hosts: readonly TargetHost[], hostsKey: string): Promise<Plan> => {
    const names: HostNames = deps.staticRoute?.(domain)
      ? { from: "static-route" }
      : hosts.every((h) => h.implicit)
      ? { from: "implicit-mx" }
      : { from: "mx", sts: deps.mtaSts ? await deps.mtaSts.policyFor(domain) : { mode: "none" } };
    if (names.from === "mx") {
      noteProblem(domain, names.sts);
      // A policy that cannot be read now (DNS, HTTPS) may be readable at the next attempt: wait rather than bounce.
      if (names.sts.mode === "none" && names.sts.problem !== undefined) {
        const r = reply(
          451,
          "4.7.10",
          `REQUIRETLS: the MTA-STS policy of ${domain} cannot be read now: ${names.sts.problem}`,
        );
        return {
          kind: "defer",
          results: (addresses) => addresses.map((address) => ({ address, reply: r, ...classifyReply(r) })),
          retry: defaultRetry(),
        };
      }
    }
    return destination(domain, hosts, `${hostsKey}|${requireTlsKey(names)}`, {
      tlsFor: requireTlsFor(names),
      requireTls: true,
    });
  };

  return async (domain, rule) => {
    // Nothing leaves the node: there is no hop for REQUIRETLS or TLS-Required to apply to.
    if (deps.sandbox || domain === SIMULATOR_DOMAIN) {
      return {
        kind: "destination",
        key: "sandbox",
        name: "sandbox",
        mxHosts: [],
        limits: sandboxShaping(deps.shaping()).limits,
        shaping: () => sandboxShaping(deps.shaping()),
        retry: defaultRetry(),
        transport: () => deps.sandboxTransport,
      };
    }
    const route = await deps.route(domain);
    switch (route.kind) {
      case "permanent": {
        const r = reply(550, route.status, route.reason);
        return {
          kind: "bounce",
          results: (addresses) =>
            addresses.map((address) => ({ address, reply: r, disposition: "bounced", category: "bad-domain" })),
          retry: defaultRetry(),
        };
      }
      case "temporary": {
        const r = reply(451, "4.4.3", route.reason);
        return {
          kind: "defer",
          results: (addresses) => addresses.map((address) => ({ address, reply: r, ...classifyTransportError("dns") })),
          retry: defaultRetry(),
        };
      }
      case "hosts": {
        const hostsKey = route.hosts.map((h) => `${h.name}:${h.port}`).sort().join(",");
        if (rule === "requiretls") return requireTlsPlan(domain, route.hosts, hostsKey);
        // "TLS-Required: No" (RFC 8689 4.2.2, 8.4): the recipient's MTA-STS policy is not looked up; TLS stays opportunistic.
        const ownPolicy = rule === "recipient-policy" && !deps.staticRoute?.(domain);
        const sts: StsResult = deps.mtaSts && ownPolicy ? await deps.mtaSts.policyFor(domain) : { mode: "none" };
        noteProblem(domain, sts);
        // TLS reporting (RFC 8460) is about the domain's own MX hosts under its own policy: mail that
        // opted out of it (which TLS reports themselves do, RFC 8460 3) or goes by a static route is not counted.
        const tlsReport = ownPolicy ? { tlsReport: reportPolicyOf(sts) } : {};
        if (sts.mode === "none") {
          return { ...destination(domain, route.hosts, hostsKey, { tlsFor: opportunistic }), ...tlsReport };
        }
        const tlsFor = stsTlsFor(domain, sts, log);
        return { ...destination(domain, route.hosts, `${hostsKey}|${stsKey(sts)}`, { tlsFor }), ...tlsReport };
      }
    }
  };
}

const opportunistic = (): TlsRequirement => ({ mode: "opportunistic" });

/**
 * A destination's name in the API and the CLI: its most preferred MX host
 * and a hash of its key, since one MX site may have several destinations
 * (MTA-STS policy, REQUIRETLS, a domain's own rules). Stable as long as the
 * key is, and URL-safe: "mx.example.com~3fa9c012".
 */
export function destinationName(host: string, key: string): string {
  return `${host}~${createHash("sha256").update(key).digest("hex").slice(0, 8)}`;
}

/**
 * The policy's part of a destination key: `sts:<mode>:<mx patterns>`. What a
 * policy requires of a host depends only on its mode and mx patterns, so
 * domains whose policies agree on both may share a pool; the id is not used
 * because ids are chosen per domain (two domains may both publish "id=1" with
 * different mx lists) and a new id with the same content changes nothing.
 */
export function stsKey(sts: Extract<StsResult, { policy: unknown }>): string {
  return `sts:${sts.mode}:${[...sts.policy.mx].sort().join(",")}`;
}

/**
 * RFC 8461 4, 5 for one destination's hosts, in the transport's terms:
 * enforce: an MX that does not match the policy is refused, one that does
 * needs STARTTLS with a certificate valid for its name (never plaintext);
 * testing: opportunistic TLS as without a policy, a mismatch only logged;
 * what enforce would refuse (the mismatch, the certificate) is checked for
 * TLS reporting (RFC 8460).
 */
export function stsTlsFor(domain: string, sts: StsResult, log: Logger): (host: TargetHost) => TlsRequirement {
  const reported = new Set<string>();
  return (host) => {
    const requirement = tlsRequirement(sts, host.name);
    if ("refuse" in requirement) {
      if (!reported.has(host.name)) {
        reported.add(host.name);
        log("warn", "MTA-STS: not delivering to an MX host the policy does not list", {
          domain,
          mx: host.name,
          reason: requirement.refuse,
        });
      }
      return { mode: "refuse", reason: `MTA-STS: ${requirement.refuse}` };
    }
    if (requirement.tls === "required") return { mode: "required", servername: requirement.servername };
    if (requirement.report !== undefined && !reported.has(host.name)) {
      reported.add(host.name);
      log("warn", "MTA-STS (testing): MX host does not match the policy; delivering anyway", {
        domain,
        mx: host.name,
        report: requirement.report,
      });
    }
    if (requirement.verifyAs === undefined) return { mode: "opportunistic" };
    const refusal = requirement.report === undefined ? {} : { refusal: requirement.report };
    return { mode: "opportunistic", audit: { servername: requirement.verifyAs, ...refusal } };
  };
}
