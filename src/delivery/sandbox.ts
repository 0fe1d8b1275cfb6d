import { type Reply, reply } from "../core/reply.ts";
import { classifyReply } from "./classify.ts";
import type { Channel, Payload, RecipientResult, Transport } from "./work.ts";

/** Recipients at this domain are simulated in any mode (SPEC.md, Sandbox). */
export const SIMULATOR_DOMAIN = "simulator.relay.test";
const SANDBOX_MTA = "sandbox.relay.test";

interface Simulation {
  readonly reply: Reply;
  readonly complaint?: boolean;
  readonly delayMs?: number;
}

/**
 * The simulated receiver: the local part picks the outcome, and the result
 * goes through the same classification, retry, bounce and event code as a
 * real delivery. Greylisting remembers (sender, recipient) as a real
 * greylister does.
 */
export class SandboxTransport implements Transport {
  private readonly greylisted = new Set<string>();

  constructor(
    private readonly slowDelayMs = 2000,
    private readonly maxRemembered = 100_000,
  ) {}

  async open(): Promise<Channel> {
    return {
      remoteMta: SANDBOX_MTA,
      usable: true,
      send: (payload) => this.send(payload),
      quit: async () => undefined,
      close: () => undefined,
    };
  }

  private simulate(mailFrom: string, recipient: string): Simulation {
    const local = recipient.slice(0, recipient.lastIndexOf("@")).toLowerCase();
    switch (local) {
      case "bounce":
        return { reply: reply(550, "5.1.1", "simulated: mailbox does not exist") };
      case "greylist": {
        const key = `${mailFrom}\0${recipient}`;
        if (this.greylisted.has(key)) return { reply: reply(250, "2.0.0", "simulated: accepted after greylisting") };
        this.greylisted.add(key);
        if (this.greylisted.size > this.maxRemembered) this.greylisted.delete(this.greylisted.values().next().value!);
        return { reply: reply(450, "4.2.0", "simulated: greylisted, try again later") };
      }
      case "throttle":
        return { reply: reply(421, "4.7.0", "simulated: too many connections, throttled") };
      case "complaint":
        return { reply: reply(250, "2.0.0", "simulated: accepted"), complaint: true };
      case "slow":
        return { reply: reply(250, "2.0.0", "simulated: accepted slowly"), delayMs: this.slowDelayMs };
      default:
        return { reply: reply(250, "2.0.0", "simulated: accepted") };
    }
  }

  private async send(payload: Payload): Promise<RecipientResult[]> {
    const simulations = payload.recipients.map((address) => ({ address, ...this.simulate(payload.mailFrom, address) }));
    const delay = Math.max(0, ...simulations.map((s) => s.delayMs ?? 0));
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
    return simulations.map((s) => ({
      address: s.address,
      reply: s.reply,
      ...classifyReply(s.reply),
      remoteMta: SANDBOX_MTA,
      complaint: s.complaint,
    }));
  }
}
