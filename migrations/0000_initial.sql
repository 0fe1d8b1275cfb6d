CREATE TABLE `events` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`at` integer NOT NULL,
	`type` text NOT NULL,
	`message_id` text,
	`recipient` text,
	`data` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `events_message` ON `events` (`message_id`);--> statement-breakpoint
CREATE TABLE `messages` (
	`id` text PRIMARY KEY NOT NULL,
	`created_at` integer NOT NULL,
	`mail_from` text NOT NULL,
	`source` text NOT NULL,
	`client_ip` text,
	`auth_user` text,
	`size` integer NOT NULL,
	`dsn_ret` text,
	`dsn_envid` text,
	`tags` text,
	`metadata` text,
	`body` blob NOT NULL
);
--> statement-breakpoint
CREATE TABLE `recipients` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`message_id` text NOT NULL,
	`address` text NOT NULL,
	`domain` text NOT NULL,
	`state` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`next_attempt_at` integer NOT NULL,
	`lease_owner` text,
	`last_reply` text,
	`dsn_notify` text,
	`dsn_orcpt` text,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`message_id`) REFERENCES `messages`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `recipients_due` ON `recipients` (`next_attempt_at`) WHERE state in ('queued', 'deferred');--> statement-breakpoint
CREATE INDEX `recipients_message` ON `recipients` (`message_id`);--> statement-breakpoint
CREATE TABLE `settings` (
	`key` text PRIMARY KEY NOT NULL,
	`value` text NOT NULL
);
