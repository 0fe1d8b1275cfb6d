export type LogLevel = "debug" | "info" | "warn" | "error";
export type Logger = (level: LogLevel, message: string, fields?: Record<string, unknown>) => void;

/** An error as a log field: its stack when it has one, so that the fault can be found. */
export function errorText(error: unknown): string {
  return error instanceof Error ? (error.stack ?? error.message) : String(error);
}

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** Structured logs to stderr: one JSON object a line, or readable text. */
export function createLogger(minimum: LogLevel, format: "json" | "text", write: (line: string) => void): Logger {
  return (level, message, fields = {}) => {
    if (RANK[level] < RANK[minimum]) return;
    const time = new Date().toISOString();
    if (format === "json") {
      write(JSON.stringify({ time, level, message, ...fields }));
    } else {
      const extra = Object.entries(fields).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`);
      write([time, level.toUpperCase(), message, ...extra].join(" "));
    }
  };
}
