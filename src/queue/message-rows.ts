import type { InStatement } from "@libsql/client";
import { DEFAULT_LANE } from "../core/lane.ts";
import { insertRows } from "./raw-insert.ts";
import type { NewMessage } from "./records.ts";
import type { BodyRef } from "./spool.ts";

const MESSAGE_COLUMNS = [
  "id",
  "created_at",
  "mail_from",
  "source",
  "client_ip",
  "auth_user",
  "size",
  "dsn_ret",
  "dsn_envid",
  "tags",
  "metadata",
  "body",
  "spool_segment",
  "spool_offset",
  "return_path_domain",
  "tls_tag",
];
const RECIPIENT_COLUMNS = [
  "message_id",
  "address",
  "domain",
  "state",
  "next_attempt_at",
  "dsn_notify",
  "dsn_orcpt",
  "updated_at",
  "lane",
];
export const EVENT_COLUMNS = ["at", "type", "message_id", "recipient", "data"];

/** The `body` column of a message whose bytes are in the spool. */
const IN_SPOOL = new Uint8Array(0);

/**
 * Inserts for a whole group of messages, whose bodies are in the spool at
 * `bodies` (in the same order), or in the rows when there is no spool: a
 * few multi-row statements rather than three per message.
 */
export function messageInserts(
  items: readonly { id: string; message: NewMessage }[],
  bodies: readonly BodyRef[] | undefined,
  now: number,
): InStatement[] {
  const json = (value: unknown) => (value === undefined ? null : JSON.stringify(value));
  const messageRows = items.map(({ id, message: m }, i) => {
    const ref = bodies?.[i];
    return [
      id,
      now,
      m.mailFrom,
      m.source,
      m.clientIp ?? null,
      m.authUser ?? null,
      m.body.byteLength,
      m.dsnRet ?? null,
      m.dsnEnvid ?? null,
      json(m.tags),
      json(m.metadata),
      ref ? IN_SPOOL : m.body,
      ref?.segment ?? null,
      ref?.offset ?? null,
      m.returnPathDomain ?? null,
      m.tlsTag ?? null,
    ];
  });
  const recipientRows = items.flatMap(({ id, message: m }) =>
    m.recipients.map((
      r,
    ) => [
      id,
      r.address,
      r.domain,
      r.suppressed ? "suppressed" : r.held ? "held" : "queued",
      Math.max(now, m.sendAt ?? now),
      r.notify?.join(",") ?? null,
      r.orcpt ?? null,
      now,
      m.lane ?? DEFAULT_LANE,
    ])
  );
  const eventRows = items.flatMap(({ id, message: m }) => {
    const data = json({
      mail_from: m.mailFrom,
      source: m.source,
      client_ip: m.clientIp,
      auth_user: m.authUser,
      size: m.body.byteLength,
      tags: m.tags,
      metadata: m.metadata,
      auth: m.authResults,
      require_tls: m.tlsTag === "requiretls" ? true : undefined,
      priority: m.lane ?? DEFAULT_LANE,
      adopted_from: m.adoptedFrom,
      scan: m.scan,
    });
    return m.recipients.flatMap((r) => [
      [now, "received", id, r.address, data],
      ...(r.suppressed ? [[now, "suppressed", id, r.address, json(r.suppressed)]] : []),
      ...(r.held && !r.suppressed ? [[now, "held", id, r.address, json(r.held)]] : []),
    ]);
  });
  return [
    ...insertRows("messages", MESSAGE_COLUMNS, messageRows),
    ...insertRows("recipients", RECIPIENT_COLUMNS, recipientRows),
    ...insertRows("events", EVENT_COLUMNS, eventRows),
  ];
}
