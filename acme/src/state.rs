//! Order and authorization state machines (RFC 8555 §7.1.6), as pure functions of the stored
//! state, the authorizations' states and the time.

use serde::{Deserialize, Serialize};

/// The status of an order, authorization, challenge or account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Waiting for the client.
    Pending,
    /// All authorizations are valid; the order can be finalized.
    Ready,
    /// The server is working (validating or issuing).
    Processing,
    /// Done.
    Valid,
    /// Failed.
    Invalid,
    /// Deactivated by the client.
    Deactivated,
    /// Past its expiry.
    Expired,
    /// Revoked by the server.
    Revoked,
}

impl Status {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Ready => "ready",
            Status::Processing => "processing",
            Status::Valid => "valid",
            Status::Invalid => "invalid",
            Status::Deactivated => "deactivated",
            Status::Expired => "expired",
            Status::Revoked => "revoked",
        }
    }

    /// From the wire name.
    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "pending" => Status::Pending,
            "ready" => Status::Ready,
            "processing" => Status::Processing,
            "valid" => Status::Valid,
            "invalid" => Status::Invalid,
            "deactivated" => Status::Deactivated,
            "expired" => Status::Expired,
            "revoked" => Status::Revoked,
            _ => return None,
        })
    }
}

/// An authorization's effective status: a pending or valid one past `expires` is expired.
pub fn authz_status(stored: Status, expires: i64, now: i64) -> Status {
    match stored {
        Status::Pending | Status::Valid if now >= expires => Status::Expired,
        s => s,
    }
}

/// An order's effective status. A `pending` order becomes `invalid` when it expires or an
/// authorization fails, and `ready` when all authorizations are valid; other stored states
/// (`ready`, `processing`, `valid`, `invalid`) stand, except that an unfinalized order past
/// its expiry is invalid.
pub fn order_status(stored: Status, authzs: &[Status], expires: i64, now: i64) -> Status {
    match stored {
        Status::Pending | Status::Ready if now >= expires => Status::Invalid,
        Status::Pending => {
            if authzs.iter().any(|s| {
                matches!(
                    s,
                    Status::Invalid | Status::Deactivated | Status::Expired | Status::Revoked
                )
            }) {
                Status::Invalid
            } else if !authzs.is_empty() && authzs.iter().all(|s| *s == Status::Valid) {
                Status::Ready
            } else {
                Status::Pending
            }
        }
        s => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_transitions() {
        use Status::*;
        assert_eq!(order_status(Pending, &[Valid, Pending], 10, 5), Pending);
        assert_eq!(order_status(Pending, &[Valid, Valid], 10, 5), Ready);
        assert_eq!(order_status(Pending, &[Valid, Invalid], 10, 5), Invalid);
        assert_eq!(order_status(Pending, &[Valid, Valid], 10, 10), Invalid);
        assert_eq!(order_status(Valid, &[Valid], 10, 50), Valid);
        assert_eq!(authz_status(Valid, 10, 11), Expired);
        assert_eq!(authz_status(Invalid, 10, 11), Invalid);
    }
}
