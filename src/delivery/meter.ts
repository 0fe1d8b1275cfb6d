/**
 * What delivery tells about its work as it happens, for the node's metrics.
 * The composition root gives one (delivery imports no metrics module);
 * without one nothing is told. Each call must be cheap and must not throw.
 */
export interface DeliveryMeter {
  /** The meter of one destination, whose MX hosts are `provider`'s (the shaping rules'; undefined: none they know). */
  at(provider: string | undefined): DestinationMeter;
  /** A group commit of delivery's: outcomes, or postponements (pacing); its size and time (ms), fsync included. */
  committed(kind: "outcomes" | "postponements", batchSize: number, ms: number): void;
}

export interface DestinationMeter {
  /** A connection (a session ready for mail) was opened, or could not be. */
  connectionOpened(): void;
  connectionFailed(): void;
  /** An opened connection ended. */
  connectionClosed(): void;
  /** One transaction (a message to its recipients there) took `ms`, answer included. */
  attempted(ms: number): void;
}
