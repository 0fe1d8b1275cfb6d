import { formatMailbox } from "../core/address.ts";
import { reply } from "../core/reply.ts";
import type { SmtpServerHooks } from "../smtp/server/index.ts";
import { mayRelay, type AccessPolicy } from "./access.ts";
import type { Ingress } from "./submit.ts";

/** The SMTP front end's decisions: relay control at RCPT, the durable enqueue at the end of DATA. */
export function smtpHooks(ingress: Ingress, policy: AccessPolicy): SmtpServerHooks {
  return {
    async onRcptTo(session, to) {
      if (!mayRelay(policy, { ip: session.remoteAddress, authUser: session.user }, to.domain)) {
        return reply(554, "5.7.1", `relay access denied for <${formatMailbox(to)}>`);
      }
      return undefined;
    },
    async onData(session, envelope, message) {
      const id = await ingress.submit({
        mailFrom: envelope.mailFrom ? formatMailbox(envelope.mailFrom) : "",
        recipients: envelope.recipients.map((r) => ({
          address: formatMailbox(r.mailbox),
          notify: r.params.notify,
          orcpt: r.params.orcpt,
        })),
        body: message,
        source: "smtp",
        clientIp: session.remoteAddress,
        clientHelo: session.heloName,
        authUser: session.user,
        tls: session.secure,
        dsnRet: envelope.mailParams.ret,
        dsnEnvid: envelope.mailParams.envid,
      });
      return reply(250, "2.0.0", `OK queued as ${id}`);
    },
  };
}
