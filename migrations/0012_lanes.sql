DROP INDEX `recipients_due`;--> statement-breakpoint
ALTER TABLE `recipients` ADD `lane` text DEFAULT 'transactional' NOT NULL;--> statement-breakpoint
CREATE INDEX `recipients_due` ON `recipients` (`lane`,`next_attempt_at`) WHERE state in ('queued', 'deferred');--> statement-breakpoint
ALTER TABLE `api_keys` ADD `lane` text DEFAULT 'transactional' NOT NULL;--> statement-breakpoint
ALTER TABLE `users` ADD `lane` text DEFAULT 'transactional' NOT NULL;