-- Searches for the names below a domain (`*.example.com`, in the certificate search and
-- alert selectors) read an index of each name reversed (lower case, characters in reverse
-- order: `moc.elpmaxe.www`), where the names under a domain share a prefix, instead of
-- scanning every name with `LIKE '%.example.com'`. Written with each name from here on;
-- existing names are reversed here.
-- Byte order ("C"), so a prefix is a range whatever the database's collation.
ALTER TABLE certificate_names ADD COLUMN name_reversed TEXT COLLATE "C";
UPDATE certificate_names SET name_reversed = reverse(lower(name));
CREATE INDEX certificate_names_reversed ON certificate_names (name_reversed);
