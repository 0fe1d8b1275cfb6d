ALTER TABLE `messages` ADD `spool_segment` integer;--> statement-breakpoint
ALTER TABLE `messages` ADD `spool_offset` integer;--> statement-breakpoint
CREATE INDEX `messages_spool` ON `messages` (`spool_segment`,`size`) WHERE spool_segment is not null;