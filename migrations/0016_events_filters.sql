CREATE INDEX `events_recipient` ON `events` (`recipient`) WHERE recipient is not null;--> statement-breakpoint
CREATE INDEX `events_type` ON `events` (`type`);