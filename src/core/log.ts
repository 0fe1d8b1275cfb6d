export type LogLevel = "debug" | "info" | "warn" | "error";
export type Logger = (level: LogLevel, message: string, fields?: Record<string, unknown>) => void;

/** RELAY_LOG_FORMAT: one JSON object a line (for collectors), or `key=value` lines for a terminal. */
export const logFormats = ["json", "pretty"] as const;
export type LogFormat = (typeof logFormats)[number];

/** An error as a log field: its stack when it has one, so that the fault can be found. */
export function errorText(error: unknown): string {
  return error instanceof Error ? (error.stack ?? error.message) : String(error);
}

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };
const LEVEL: Record<LogLevel, string> = { debug: "DEBUG", info: "INFO ", warn: "WARN ", error: "ERROR" };

/** A value as logfmt writes it: bare when that reads back unambiguously, quoted (JSON) otherwise. */
function prettyValue(value: unknown): string {
  if (typeof value === "string") return value !== "" && /^[^\s"=\\]+$/.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value) ?? "undefined";
}

/** One line for a terminal: time, level, message, then `key=value` (logfmt); absent fields are left out. */
export function prettyLine(time: string, level: LogLevel, message: string, fields: Record<string, unknown>): string {
  let line = `${time} ${LEVEL[level]} ${message}`;
  for (const key in fields) {
    const value = fields[key];
    if (value !== undefined) line += ` ${key}=${prettyValue(value)}`;
  }
  return line;
}

function formatLine(format: LogFormat, level: LogLevel, message: string, fields: Record<string, unknown>): string {
  const time = new Date().toISOString();
  return format === "json"
    ? JSON.stringify({ time, level, message, ...fields })
    : prettyLine(time, level, message, fields);
}

/** Structured logs to stderr: one JSON object a line, or readable logfmt text. */
export function createLogger(minimum: LogLevel, format: LogFormat, write: (line: string) => void): Logger {
  return (level, message, fields = {}) => {
    if (RANK[level] < RANK[minimum]) return;
    write(formatLine(format, level, message, fields));
  };
}

/** A logger whose lines wait for `flush`. */
export interface BatchLogger {
  readonly log: Logger;
  /** Write the lines kept since the last flush, in one call. */
  flush(): void;
}

/**
 * A logger for bursts of lines (a page of the delivery log): one write of
 * many lines costs a fraction of one write each.
 */
export function batchLogger(minimum: LogLevel, format: LogFormat, write: (lines: string) => void): BatchLogger {
  let lines: string[] = [];
  return {
    log: createLogger(minimum, format, (line) => lines.push(line)),
    flush() {
      if (lines.length === 0) return;
      const text = lines.join("\n");
      lines = [];
      write(text);
    },
  };
}
