-- RDP hosts' display and clipboard settings, as JSON:
-- {"width":N,"height":N} (absent: fit the tab), "clipboard": bool, "domain": "…".
ALTER TABLE hosts ADD COLUMN rdp TEXT NOT NULL DEFAULT '{}';
