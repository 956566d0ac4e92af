-- Names are kept reversed (lower case, characters in reverse order: `moc.elpmaxe.www`)
-- and found by that: the names below a domain (`*.example.com`, in the certificate search
-- and alert selectors) share a prefix, one range of the key, where `LIKE '%.example.com'`
-- scanned every name; an exact name is one key. The primary key becomes
-- (name_reversed, certificate_id), in byte order ("C") so that a prefix is a range
-- whatever the database's collation. Names already stored are reversed here.
ALTER TABLE certificate_names ADD COLUMN name_reversed TEXT COLLATE "C";
UPDATE certificate_names SET name_reversed = reverse(lower(name));
ALTER TABLE certificate_names ALTER COLUMN name_reversed SET NOT NULL;
ALTER TABLE certificate_names DROP CONSTRAINT certificate_names_pkey;
ALTER TABLE certificate_names ADD PRIMARY KEY (name_reversed, certificate_id);
