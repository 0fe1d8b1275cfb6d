CREATE TABLE `webhook_dead_letters` (
	`webhook_id` text NOT NULL,
	`event_id` integer NOT NULL,
	`event` text NOT NULL,
	`dead_at` integer NOT NULL,
	`last_error` text NOT NULL,
	`replay_at` integer,
	PRIMARY KEY(`webhook_id`, `event_id`),
	FOREIGN KEY (`webhook_id`) REFERENCES `webhooks`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `webhook_dead_letters_replay` ON `webhook_dead_letters` (`webhook_id`) WHERE replay_at is not null;--> statement-breakpoint
CREATE TABLE `webhooks` (
	`id` text PRIMARY KEY NOT NULL,
	`url` text NOT NULL,
	`event_types` text NOT NULL,
	`description` text,
	`secret` text NOT NULL,
	`created_at` integer NOT NULL,
	`cursor` integer NOT NULL,
	`batch_end` integer,
	`attempts` integer DEFAULT 0 NOT NULL,
	`first_failure_at` integer,
	`next_attempt_at` integer,
	`last_error` text,
	`last_success_at` integer
);
