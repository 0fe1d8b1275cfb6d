/**
 * The numbers of the Sendmail milter protocol, version 6 (Sendmail 8.14 and
 * later, as Postfix speaks it): command and reply codes, protocol-flag bits
 * and action bits. Values from sendmail's include/libmilter/mfdef.h and
 * mfapi.h, checked against Postfix's src/milter/milter8.c.
 */

/** The protocol version the relay offers (mfdef.h SMFI_PROT_VERSION). */
export const MILTER_VERSION = 6;

/** The largest body chunk one SMFIC_BODY carries (mfdef.h MILTER_CHUNK_SIZE). */
export const MILTER_CHUNK_SIZE = 65535;

/** Commands the MTA sends (mfdef.h SMFIC_*), as their one-byte codes. */
export const Command = {
  ABORT: 0x41, // 'A'
  BODY: 0x42, // 'B'
  CONNECT: 0x43, // 'C'
  MACRO: 0x44, // 'D'
  BODYEOB: 0x45, // 'E'
  HELO: 0x48, // 'H'
  HEADER: 0x4c, // 'L'
  MAIL: 0x4d, // 'M'
  EOH: 0x4e, // 'N'
  OPTNEG: 0x4f, // 'O'
  QUIT: 0x51, // 'Q'
  RCPT: 0x52, // 'R'
  DATA: 0x54, // 'T'
} as const;
export type CommandCode = (typeof Command)[keyof typeof Command];

/** Replies the milter sends (mfdef.h SMFIR_*), and OPTNEG, its answer to negotiation. */
export const Reply = {
  ADDRCPT: 0x2b, // '+'
  DELRCPT: 0x2d, // '-'
  ADDRCPT_PAR: 0x32, // '2'
  OPTNEG: 0x4f, // 'O'
  ACCEPT: 0x61, // 'a'
  REPLBODY: 0x62, // 'b'
  CONTINUE: 0x63, // 'c'
  DISCARD: 0x64, // 'd'
  CHGFROM: 0x65, // 'e'
  ADDHEADER: 0x68, // 'h'
  INSHEADER: 0x69, // 'i'
  /** In practice carried inside the OPTNEG answer (milter8.c reads the macro lists there). */
  SETSYMLIST: 0x6c, // 'l'
  CHGHEADER: 0x6d, // 'm'
  PROGRESS: 0x70, // 'p'
  QUARANTINE: 0x71, // 'q'
  REJECT: 0x72, // 'r'
  SKIP: 0x73, // 's'
  TEMPFAIL: 0x74, // 't'
  REPLYCODE: 0x79, // 'y'
} as const;
export type ReplyCode = (typeof Reply)[keyof typeof Reply];

export const COMMAND_CODES: ReadonlySet<number> = new Set(Object.values(Command));
export const REPLY_CODES: ReadonlySet<number> = new Set(Object.values(Reply));

/** Address families of SMFIC_CONNECT (mfdef.h SMFIA_*). */
export const Family = {
  UNKNOWN: "U",
  UNIX: "L",
  INET: "4",
  INET6: "6",
} as const;
export type FamilyCode = (typeof Family)[keyof typeof Family];

/**
 * Protocol flags (mfdef.h SMFIP_*): in OPTNEG the MTA offers them and the
 * milter answers with the ones it wants. NO* = do not send that event,
 * NR_* = the milter will not reply to it.
 */
export const Protocol = {
  NOCONNECT: 0x1,
  NOHELO: 0x2,
  NOMAIL: 0x4,
  NORCPT: 0x8,
  NOBODY: 0x10,
  NOHDRS: 0x20,
  NOEOH: 0x40,
  NR_HDR: 0x80,
  NOUNKNOWN: 0x100,
  NODATA: 0x200,
  /** The MTA understands SMFIR_SKIP. */
  SKIP: 0x400,
  /** Send rejected RCPTs too; the relay does not offer it. */
  RCPT_REJ: 0x800,
  NR_CONN: 0x1000,
  NR_HELO: 0x2000,
  NR_MAIL: 0x4000,
  NR_RCPT: 0x8000,
  NR_DATA: 0x10000,
  NR_UNKN: 0x20000,
  NR_EOH: 0x40000,
  NR_BODY: 0x80000,
  /** Header values keep their leading space (otherwise one space after the colon is eaten, milter8.c). */
  HDR_LEADSPC: 0x100000,
} as const;

/** Actions a milter may ask for at end of message (mfapi.h SMFIF_*). */
export const Action = {
  ADDHDRS: 0x1,
  CHGBODY: 0x2,
  ADDRCPT: 0x4,
  DELRCPT: 0x8,
  CHGHDRS: 0x10,
  QUARANTINE: 0x20,
  CHGFROM: 0x40,
  ADDRCPT_PAR: 0x80,
  SETSYMLIST: 0x100,
} as const;

/** Every action the relay honours: all of them. */
export const ALL_ACTIONS = Object.values(Action).reduce((all, bit) => all | bit, 0);

/**
 * The protocol flags the relay offers: every event may be skipped and left
 * unanswered, SKIP is understood, header values may keep their space.
 * RCPT_REJ and the UNKNOWN event are left out: the relay never sends them.
 */
export const OFFERED_PROTOCOL = Protocol.NOCONNECT | Protocol.NOHELO | Protocol.NOMAIL | Protocol.NORCPT |
  Protocol.NOBODY | Protocol.NOHDRS | Protocol.NOEOH | Protocol.NR_HDR | Protocol.NOUNKNOWN | Protocol.NODATA |
  Protocol.SKIP | Protocol.NR_CONN | Protocol.NR_HELO | Protocol.NR_MAIL | Protocol.NR_RCPT | Protocol.NR_DATA |
  Protocol.NR_UNKN | Protocol.NR_EOH | Protocol.NR_BODY | Protocol.HDR_LEADSPC;

/**
 * Where a list of macro names applies, as numbered in the OPTNEG answer's
 * macro lists (mfapi.h SMFIM_*; note EOM 5 comes before EOH 6).
 */
export const MacroStage = {
  CONNECT: 0,
  HELO: 1,
  ENVFROM: 2,
  ENVRCPT: 3,
  DATA: 4,
  EOM: 5,
  EOH: 6,
} as const;
export type MacroStageNumber = (typeof MacroStage)[keyof typeof MacroStage];
