CREATE TABLE `warmup_state` (
	`source_ip` text NOT NULL,
	`provider` text NOT NULL,
	`step` integer NOT NULL,
	`step_since` integer NOT NULL,
	`window_start` integer NOT NULL,
	`sent` integer NOT NULL,
	`delivered` integer NOT NULL,
	`deferred` integer NOT NULL,
	`blocked` integer NOT NULL,
	`complained` integer NOT NULL,
	`hour_start` integer NOT NULL,
	`hour_sent` integer NOT NULL,
	`day_start` integer NOT NULL,
	`day_sent` integer NOT NULL,
	PRIMARY KEY(`source_ip`, `provider`)
);
