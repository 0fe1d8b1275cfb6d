CREATE TABLE `dkim_keys` (
	`id` text PRIMARY KEY NOT NULL,
	`domain` text NOT NULL,
	`selector` text NOT NULL,
	`algorithm` text NOT NULL,
	`private_key` text NOT NULL,
	`public_key` text NOT NULL,
	`state` text NOT NULL,
	`created_at` integer NOT NULL,
	`activated_at` integer,
	`retire_after` integer,
	FOREIGN KEY (`domain`) REFERENCES `sending_domains`(`domain`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `dkim_keys_domain_selector` ON `dkim_keys` (`domain`,`selector`);--> statement-breakpoint
CREATE TABLE `sending_domains` (
	`domain` text PRIMARY KEY NOT NULL,
	`created_at` integer NOT NULL,
	`last_check` text,
	`last_checked_at` integer
);
