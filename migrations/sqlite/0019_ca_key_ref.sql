-- A CA whose key is kept in a PKCS#11 token: key_ref is the RFC 7512 URI of the key
-- (token label and CKA_ID) and key_sealed is empty, as nothing is sealed for it.
-- NULL for every CA whose key is sealed under the master key.
ALTER TABLE cas ADD COLUMN key_ref TEXT;
