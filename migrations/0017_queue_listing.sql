DROP INDEX `recipients_pending_domain`;--> statement-breakpoint
CREATE INDEX `recipients_in_queue` ON `recipients` (`domain`,`state`,`message_id`) WHERE state in ('queued', 'deferred', 'held');