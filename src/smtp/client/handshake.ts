import type { TLSSocket } from "node:tls";
import type { Reply } from "../../core/reply.ts";
import { replyText } from "../../core/reply.ts";
import { type CertificateProblem, certificateProblem, connectTcp, upgradeToTlsClient } from "../../platform/net.ts";
import { ReplyChannel } from "./channel.ts";
import { type ClientStage, kindOfSocketError, SmtpClientError } from "./errors.ts";
import { parseExtensions } from "./extensions.ts";
import type { ClientOptions, ClientTimeouts } from "./options.ts";

export interface TlsInfo {
  readonly version: string;
  readonly cipher: string;
  /** With tlsAudit: why the certificate would not have verified; absent when it would. */
  readonly certificateProblem?: CertificateProblem;
}

export interface Handshake {
  readonly channel: ReplyChannel;
  readonly greeting: Reply;
  readonly extensions: Map<string, string>;
  readonly tls?: TlsInfo;
}

const refused = (stage: ClientStage, reply: Reply, kind: "reply" | "tls" = "reply") =>
  new SmtpClientError(kind, stage, `${stage} refused: ${replyText(reply)}`, reply);

/** Connect, read the greeting, EHLO, and STARTTLS when wanted (RFC 5321 3.1, 4.1.1.1; RFC 3207). */
export async function handshake(options: ClientOptions, t: ClientTimeouts): Promise<Handshake> {
  const channel = await connect(options, t);
  try {
    const greeting = await channel.next("greeting", undefined, t.greeting);
    if (greeting.code !== 220) {
      channel.write("QUIT\r\n"); // RFC 5321 3.1: after a 554 greeting the client should QUIT
      throw refused("greeting", greeting);
    }
    let extensions = await hello(channel, options.heloName, t);
    let tls: TlsInfo | undefined;
    if (options.tls !== "none" && extensions.has("STARTTLS")) {
      channel.write("STARTTLS\r\n");
      const answer = await channel.next("starttls", "STARTTLS", t.starttls).catch(asTlsFailure);
      if (answer.code === 220) {
        tls = await startTls(channel, options, t).catch(asTlsFailure);
        extensions = await hello(channel, options.heloName, t); // RFC 3207 4.2: forget what was learned before TLS
      } else if (options.tls === "required") {
        throw refused("starttls", answer, "tls");
      }
    } else if (options.tls === "required") {
      throw new SmtpClientError("tls", "starttls", `TLS required but ${options.host} does not offer STARTTLS`);
    }
    return { channel, greeting, extensions, tls };
  } catch (error) {
    channel.close();
    throw error;
  }
}

/**
 * A server that breaks the session between STARTTLS and the end of the
 * handshake (garbage or plaintext after its 220, a close, a reset) failed at
 * TLS: it is reported as such, so that opportunistic TLS retries in
 * plaintext and required TLS defers, whichever way the bytes arrived.
 */
function asTlsFailure(error: unknown): never {
  if (
    error instanceof SmtpClientError &&
    (error.kind === "protocol" || error.kind === "disconnected" || error.kind === "reset")
  ) {
    throw new SmtpClientError("tls", error.stage, `STARTTLS failed: ${error.message}`, error.reply, error.code, {
      cause: error,
    });
  }
  throw error;
}

async function connect(options: ClientOptions, t: ClientTimeouts): Promise<ReplyChannel> {
  const { host, port, localAddress } = options;
  try {
    const socket = await connectTcp({ host, port, localAddress, timeoutMs: t.connect });
    return new ReplyChannel(socket, options.maxReplyBytes, options.transcript);
  } catch (error) {
    const { kind, code } = kindOfSocketError(error, "connect");
    const message = `connect to ${host}:${port}${localAddress ? ` from ${localAddress}` : ""} failed: ${
      (error as Error).message
    }`;
    throw new SmtpClientError(kind, "connect", message, undefined, code, { cause: error });
  }
}

/** EHLO, falling back to HELO when EHLO is refused permanently (RFC 5321 3.2). */
async function hello(channel: ReplyChannel, name: string, t: ClientTimeouts): Promise<Map<string, string>> {
  channel.write(`EHLO ${name}\r\n`);
  const ehlo = await channel.next("ehlo", `EHLO ${name}`, t.ehlo);
  if (ehlo.code === 250) return parseExtensions(ehlo);
  if (ehlo.code < 500) throw refused("ehlo", ehlo);
  channel.write(`HELO ${name}\r\n`);
  const helo = await channel.next("helo", `HELO ${name}`, t.ehlo);
  if (helo.code !== 250) throw refused("helo", helo);
  return new Map();
}

async function startTls(channel: ReplyChannel, options: ClientOptions, t: ClientTimeouts): Promise<TlsInfo> {
  const plain = channel.detach("starttls");
  let secure: TLSSocket;
  try {
    const servername = options.servername ?? options.host; // the platform drops IP literals (RFC 6066 3)
    secure = await upgradeToTlsClient(plain, {
      servername,
      verify: options.tlsVerify ?? false,
      timeoutMs: t.starttls,
      ...(options.tlsCa === undefined ? {} : { ca: options.tlsCa as (string | Buffer)[] }),
    });
  } catch (error) {
    plain.destroy();
    const code = (error as { code?: string }).code;
    throw new SmtpClientError("tls", "tls", `TLS handshake failed: ${(error as Error).message}`, undefined, code, {
      cause: error,
    });
  }
  channel.attach(secure);
  const info = { version: secure.getProtocol() ?? "unknown", cipher: secure.getCipher()?.name ?? "unknown" };
  const problem = options.tlsAudit && !options.tlsVerify
    ? certificateProblem(secure, options.servername ?? options.host)
    : undefined;
  return problem ? { ...info, certificateProblem: problem } : info;
}
