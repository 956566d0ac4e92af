-- Names are kept reversed (lower case, characters in reverse order: `moc.elpmaxe.www`)
-- and found by that: the names below a domain (`*.example.com`, in the certificate search
-- and alert selectors) share a prefix, one range of the key, where `LIKE '%.example.com'`
-- scanned every name; an exact name is one key. The table becomes one B-tree keyed by
-- (name_reversed, certificate_id) (WITHOUT ROWID), where it was a table, its primary key's
-- index: one insert per name instead of two. Names already stored are reversed here.
CREATE TABLE certificate_names_reversed (
    name_reversed  TEXT NOT NULL,
    certificate_id TEXT NOT NULL REFERENCES certificates(id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    PRIMARY KEY (name_reversed, certificate_id)
) WITHOUT ROWID;
INSERT OR IGNORE INTO certificate_names_reversed (name_reversed, certificate_id, name)
SELECT (
    WITH RECURSIVE r(i, out) AS (
        SELECT length(n.name), ''
        UNION ALL
        SELECT i - 1, out || substr(n.name, i, 1) FROM r WHERE i > 0
    )
    SELECT lower(out) FROM r WHERE i = 0
), n.certificate_id, n.name
FROM certificate_names n;
DROP TABLE certificate_names;
ALTER TABLE certificate_names_reversed RENAME TO certificate_names;
