CREATE TABLE `tls_report_counts` (
	`period_start` integer NOT NULL,
	`period_end` integer NOT NULL,
	`policy_domain` text NOT NULL,
	`policy_type` text NOT NULL,
	`policy_string` text NOT NULL,
	`mx_host` text NOT NULL,
	`result_type` text NOT NULL,
	`sending_ip` text NOT NULL,
	`receiving_mx` text NOT NULL,
	`receiving_ip` text NOT NULL,
	`reason_code` text NOT NULL,
	`sessions` integer NOT NULL,
	PRIMARY KEY(`period_start`, `policy_domain`, `period_end`, `policy_type`, `policy_string`, `mx_host`, `result_type`, `sending_ip`, `receiving_mx`, `receiving_ip`, `reason_code`)
);
--> statement-breakpoint
CREATE INDEX `tls_report_counts_period_end` ON `tls_report_counts` (`period_end`);--> statement-breakpoint
CREATE TABLE `tls_reports` (
	`policy_domain` text NOT NULL,
	`period_start` integer NOT NULL,
	`period_end` integer NOT NULL,
	`rua` text NOT NULL,
	`report_id` text NOT NULL,
	`report` blob NOT NULL,
	`state` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`next_attempt_at` integer NOT NULL,
	`last_error` text,
	`created_at` integer NOT NULL,
	`sent_at` integer,
	PRIMARY KEY(`policy_domain`, `period_start`, `rua`)
);
--> statement-breakpoint
CREATE INDEX `tls_reports_due` ON `tls_reports` (`next_attempt_at`) WHERE state = 'pending';