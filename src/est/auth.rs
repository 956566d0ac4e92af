//! EST authentication as it arrives over HTTP: the `Authorization: Basic` header. Whether
//! the credentials or the TLS client certificate are good is decided by
//! [`crate::services::est`].

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use base64::Engine;

use crate::error::Error;

/// The user name and password of an `Authorization: Basic` header, if there is one.
pub fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, Error> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || Error::Unauthorized("malformed Authorization: Basic header".into());
    let value = value.to_str().map_err(|_| bad())?;
    let Some((scheme, rest)) = value.split_once(' ') else {
        return Err(bad());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(Error::Unauthorized(
            "EST takes HTTP Basic credentials or a TLS client certificate".into(),
        ));
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (user, pass) = text.split_once(':').ok_or_else(bad)?;
    Ok(Some((user.to_string(), pass.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header_parsing() {
        let mut h = HeaderMap::new();
        assert!(basic_credentials(&h).unwrap().is_none());
        h.insert(AUTHORIZATION, "Basic dXNlcjpwYTpzcw==".parse().unwrap());
        assert_eq!(
            basic_credentials(&h).unwrap(),
            Some(("user".into(), "pa:ss".into()))
        );
        h.insert(AUTHORIZATION, "Basic !!!".parse().unwrap());
        assert!(basic_credentials(&h).is_err());
        h.insert(AUTHORIZATION, "Bearer x".parse().unwrap());
        assert!(basic_credentials(&h).is_err());
    }
}
