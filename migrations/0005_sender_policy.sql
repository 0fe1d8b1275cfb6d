ALTER TABLE `messages` ADD `return_path_domain` text;--> statement-breakpoint
ALTER TABLE `sending_domains` ADD `verified_at` integer;--> statement-breakpoint
-- A domain whose last check (before this migration) already saw an active key's DKIM record is verified since then.
UPDATE `sending_domains` SET `verified_at` = `last_checked_at`
WHERE `verified_at` IS NULL AND `last_checked_at` IS NOT NULL AND EXISTS (
  SELECT 1 FROM json_each(`sending_domains`.`last_check`, '$.records') AS r
  WHERE json_extract(r.value, '$.purpose') = 'dkim' AND json_extract(r.value, '$.keyState') = 'active' AND json_extract(r.value, '$.status') = 'pass'
);
