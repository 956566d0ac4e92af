//! Waiting for dns-01 records to propagate, whatever the provider: the zone's
//! authoritative servers are queried until each answers the record, within a time limit.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use hickory_net::client::{Client, ClientHandle};
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::udp::UdpClientStream;
use hickory_proto::rr::{DNSClass, Name, RData, RecordType, TSigner};

use crate::services::issuers::port::UpstreamFailure;

/// Longest wait for one DNS answer.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// A DNS failure, for people.
pub(crate) fn dns_failure(what: &str, e: impl std::fmt::Display) -> UpstreamFailure {
    UpstreamFailure::plain(format!("DNS {what}: {e}"))
}

/// A DNS client to `server`, signing with `signer` when given.
pub(crate) async fn client(
    server: SocketAddr,
    signer: Option<TSigner>,
) -> Result<Client<TokioRuntimeProvider>, UpstreamFailure> {
    let stream = UdpClientStream::builder(server, TokioRuntimeProvider::default())
        .with_timeout(Some(QUERY_TIMEOUT))
        .with_signer(signer)
        .build();
    let (client, background) = Client::<TokioRuntimeProvider>::from_sender(stream);
    tokio::spawn(background);
    Ok(client)
}

/// Whether `server` answers the TXT record `value` at `name`.
async fn shows(server: SocketAddr, name: &Name, value: &str) -> Result<bool, UpstreamFailure> {
    let mut c = client(server, None).await?;
    let answer = c
        .query(name.clone(), DNSClass::IN, RecordType::TXT)
        .await
        .map_err(|e| dns_failure("query", e))?;
    Ok(answer.answers.iter().any(|r| match &r.data {
        RData::TXT(t) => t.to_string() == value,
        _ => false,
    }))
}

/// Wait until every server in `servers` answers the TXT record `value` at `name`, at most
/// `limit`.
pub async fn wait_visible(
    servers: &[SocketAddr],
    name: &str,
    value: &str,
    limit: Duration,
) -> Result<(), UpstreamFailure> {
    let name = Name::from_str(name).map_err(|e| dns_failure("name", e))?;
    let deadline = tokio::time::Instant::now() + limit;
    for server in servers {
        loop {
            if shows(*server, &name, value).await.unwrap_or(false) {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(UpstreamFailure::plain(format!(
                    "the TXT record at {name} did not show on {server} within {}s",
                    limit.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    Ok(())
}
