-- Owner of audit events that belong to no tenant (a malformed queue message
-- names no workspace it can be trusted with). No user is ever a member of it.
INSERT INTO `workspaces` (`id`, `slug`, `name`, `created_at`) VALUES ('ws_system', 'system', 'System', 0);
