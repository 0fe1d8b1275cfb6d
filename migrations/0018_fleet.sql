CREATE TABLE `nodes` (
	`id` text PRIMARY KEY NOT NULL,
	`source_ip` text,
	`hostname` text NOT NULL,
	`version` text NOT NULL,
	`started_at` integer NOT NULL,
	`heartbeat_at` integer NOT NULL,
	`queue_depth` integer NOT NULL,
	`state` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `nodes_heartbeat` ON `nodes` (`heartbeat_at`);--> statement-breakpoint
CREATE TABLE `shared_outbox` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`statement` text NOT NULL,
	`created_at` integer NOT NULL
);
