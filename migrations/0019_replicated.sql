CREATE TABLE `replicated_done` (
	`message_id` text NOT NULL,
	`address` text NOT NULL,
	`done_at` integer NOT NULL,
	PRIMARY KEY(`message_id`, `address`)
);
--> statement-breakpoint
CREATE TABLE `replicated_messages` (
	`id` text PRIMARY KEY NOT NULL,
	`owner` text NOT NULL,
	`accepted_by` text NOT NULL,
	`message` text NOT NULL,
	`body` blob NOT NULL,
	`accepted_at` integer NOT NULL,
	`adopted_at` integer,
	`finished_at` integer
);
--> statement-breakpoint
CREATE INDEX `replicated_messages_owner` ON `replicated_messages` (`owner`);--> statement-breakpoint
CREATE INDEX `replicated_messages_finished` ON `replicated_messages` (`finished_at`);--> statement-breakpoint
ALTER TABLE `nodes` ADD `epoch` integer DEFAULT 0 NOT NULL;