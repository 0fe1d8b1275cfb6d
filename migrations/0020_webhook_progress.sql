CREATE TABLE `webhook_progress` (
	`webhook_id` text PRIMARY KEY NOT NULL,
	`cursor` integer NOT NULL,
	`batch_end` integer,
	`attempts` integer DEFAULT 0 NOT NULL,
	`first_failure_at` integer,
	`next_attempt_at` integer,
	`last_error` text,
	`last_success_at` integer
);
--> statement-breakpoint
-- Each endpoint keeps its place in this database's event log, and its failure state, as it was.
INSERT INTO `webhook_progress`("webhook_id", "cursor", "batch_end", "attempts", "first_failure_at", "next_attempt_at", "last_error", "last_success_at") SELECT "id", "cursor", "batch_end", "attempts", "first_failure_at", "next_attempt_at", "last_error", "last_success_at" FROM `webhooks`;--> statement-breakpoint
-- Dead letters now hang off the progress rows (PRAGMA foreign_keys cannot change inside the migrations' transaction:
-- the table is rebuilt with its parents already there, and the old one, a child, dropped).
CREATE TABLE `__new_webhook_dead_letters` (
	`webhook_id` text NOT NULL,
	`event_id` integer NOT NULL,
	`event` text NOT NULL,
	`dead_at` integer NOT NULL,
	`last_error` text NOT NULL,
	`replay_at` integer,
	PRIMARY KEY(`webhook_id`, `event_id`),
	FOREIGN KEY (`webhook_id`) REFERENCES `webhook_progress`(`webhook_id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
INSERT INTO `__new_webhook_dead_letters`("webhook_id", "event_id", "event", "dead_at", "last_error", "replay_at") SELECT "webhook_id", "event_id", "event", "dead_at", "last_error", "replay_at" FROM `webhook_dead_letters`;--> statement-breakpoint
DROP TABLE `webhook_dead_letters`;--> statement-breakpoint
ALTER TABLE `__new_webhook_dead_letters` RENAME TO `webhook_dead_letters`;--> statement-breakpoint
CREATE INDEX `webhook_dead_letters_replay` ON `webhook_dead_letters` (`webhook_id`) WHERE replay_at is not null;--> statement-breakpoint
ALTER TABLE `webhooks` DROP COLUMN `cursor`;--> statement-breakpoint
ALTER TABLE `webhooks` DROP COLUMN `batch_end`;--> statement-breakpoint
ALTER TABLE `webhooks` DROP COLUMN `attempts`;--> statement-breakpoint
ALTER TABLE `webhooks` DROP COLUMN `first_failure_at`;--> statement-breakpoint
ALTER TABLE `webhooks` DROP COLUMN `next_attempt_at`;--> statement-breakpoint
ALTER TABLE `webhooks` DROP COLUMN `last_error`;--> statement-breakpoint
ALTER TABLE `webhooks` DROP COLUMN `last_success_at`;