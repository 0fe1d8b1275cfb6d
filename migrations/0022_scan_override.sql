ALTER TABLE `api_keys` ADD `scan` integer;--> statement-breakpoint
ALTER TABLE `users` ADD `scan` integer;