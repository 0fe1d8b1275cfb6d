ALTER TABLE `recipients` ADD `dsn_pending` text;--> statement-breakpoint
ALTER TABLE `recipients` ADD `delay_notified_at` integer;--> statement-breakpoint
ALTER TABLE `recipients` ADD `last_mta` text;--> statement-breakpoint
CREATE INDEX `recipients_dsn_pending` ON `recipients` (`message_id`) WHERE dsn_pending is not null;