/**
 * One message over SMTP as a submitting application sends it: nodemailer,
 * STARTTLS required (the relay's certificate is self-signed here), AUTH
 * PLAIN. A refusal is an answer, not an error: its code and text.
 */
import nodemailer from "nodemailer";

export interface AuthenticatedSubmission {
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly mailFrom: string;
  readonly rcptTo: readonly string[];
  readonly raw: string;
}

export type SubmitAnswer =
  | { readonly ok: true; readonly code: number; readonly response: string }
  | { readonly ok: false; readonly code: number | undefined; readonly response: string };

export async function submitWithAuth(submission: AuthenticatedSubmission): Promise<SubmitAnswer> {
  const transport = nodemailer.createTransport({
    host: "127.0.0.1",
    port: submission.port,
    secure: false,
    requireTLS: true,
    tls: { rejectUnauthorized: false },
    auth: { user: submission.user, pass: submission.password },
  });
  try {
    const info = await transport.sendMail({
      envelope: { from: submission.mailFrom, to: [...submission.rcptTo] },
      raw: submission.raw,
    });
    return { ok: true, code: Number(info.response.slice(0, 3)), response: info.response };
  } catch (error) {
    const e = error as { responseCode?: number; response?: string };
    return { ok: false, code: e.responseCode, response: e.response ?? String(error) };
  } finally {
    transport.close();
  }
}
