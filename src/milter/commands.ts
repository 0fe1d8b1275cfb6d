/**
 * The packets the MTA sends, in the layouts of milter8.c (milter8_connect,
 * milter8_event and the milter8_*_event functions).
 */
import { Command, Family, type FamilyCode } from "./constants.ts";
import { FieldWriter } from "./fields.ts";

/** SMFIC_OPTNEG: our version, the actions we honour, the protocol flags we offer. */
export function optnegCommand(version: number, actions: number, protocol: number): Uint8Array {
  return new FieldWriter().uint32(version).uint32(actions).uint32(protocol).packet(Command.OPTNEG);
}

/**
 * SMFIC_MACRO: the code of the command the macros belong to, then name and
 * value strings in turn. Names of more than one letter go in braces, as
 * Sendmail and Postfix send them ("{client_addr}", but "i" and "j").
 */
export function macroCommand(forCommand: number, macros: Readonly<Record<string, string>>): Uint8Array {
  const writer = new FieldWriter().byte(forCommand);
  for (const [name, value] of Object.entries(macros)) writer.string(bracedMacroName(name)).string(value);
  return writer.packet(Command.MACRO);
}

export function bracedMacroName(name: string): string {
  const bare = name.replace(/^\{(.*)\}$/, "$1");
  return bare.length === 1 ? bare : `{${bare}}`;
}

export interface ConnectInfo {
  /** The client's host name, or its address in brackets when it has none (milter8.c does the same). */
  readonly hostname: string;
  readonly family: FamilyCode;
  /** The client's port (0 for a local socket). */
  readonly port?: number;
  /** The client's address, or the socket's path for a local one. */
  readonly address?: string;
}

/** SMFIC_CONNECT: host name, family, then for a known family the port (16 bits) and address. */
export function connectCommand(info: ConnectInfo): Uint8Array {
  const writer = new FieldWriter().string(info.hostname).byte(info.family.charCodeAt(0));
  if (info.family !== Family.UNKNOWN) writer.uint16(info.port ?? 0).string(info.address ?? "");
  return writer.packet(Command.CONNECT);
}

export function heloCommand(name: string): Uint8Array {
  return new FieldWriter().string(name).packet(Command.HELO);
}

/** SMFIC_MAIL or SMFIC_RCPT: the address, then each ESMTP argument, each NUL-terminated. */
export function envelopeCommand(code: typeof Command.MAIL | typeof Command.RCPT, args: readonly string[]): Uint8Array {
  const writer = new FieldWriter();
  for (const arg of args) writer.string(arg);
  return writer.packet(code);
}

/** SMFIC_HEADER: name and value as octets (see message-view.ts), each NUL-terminated. */
export function headerCommand(name: Uint8Array, value: Uint8Array): Uint8Array {
  return new FieldWriter().bytes(name).byte(0).bytes(value).byte(0).packet(Command.HEADER);
}

export function bodyCommand(chunk: Uint8Array): Uint8Array {
  return new FieldWriter().bytes(chunk).packet(Command.BODY);
}

/** A command without data: DATA, EOH, BODYEOB, ABORT, QUIT. */
export function bareCommand(code: number): Uint8Array {
  return new FieldWriter().packet(code);
}
