CREATE TABLE `suppressions` (
	`address` text NOT NULL,
	`scope_kind` text NOT NULL,
	`scope_value` text NOT NULL,
	`reason` text NOT NULL,
	`source_event` text,
	`source_message_id` text,
	`created_at` integer NOT NULL,
	`expires_at` integer,
	PRIMARY KEY(`address`, `scope_kind`, `scope_value`)
);
