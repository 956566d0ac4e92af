-- Searches for the names below a domain (`*.example.com`, in the certificate search and
-- alert selectors) read an index of each name reversed (lower case, characters in reverse
-- order: `moc.elpmaxe.www`), where the names under a domain share a prefix, instead of
-- scanning every name with `LIKE '%.example.com'`. Written with each name from here on;
-- existing names are reversed here.
ALTER TABLE certificate_names ADD COLUMN name_reversed TEXT;
UPDATE certificate_names SET name_reversed = (
    WITH RECURSIVE r(i, out) AS (
        SELECT length(certificate_names.name), ''
        UNION ALL
        SELECT i - 1, out || substr(certificate_names.name, i, 1) FROM r WHERE i > 0
    )
    SELECT lower(out) FROM r WHERE i = 0
);
CREATE INDEX certificate_names_reversed ON certificate_names (name_reversed);
