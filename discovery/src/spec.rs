//! What a scan request carries, as a person or a client writes it: targets, ports, server
//! names and STARTTLS overrides as text. The CLI builds it (and plans a local scan from it);
//! the server accepts it as JSON and plans it the same way.

use serde::{Deserialize, Serialize};

use crate::{Error, PortSet, ScanPlan, SniMode, StartTls, Target};

/// What a scan request carries: the CLI builds it, the server accepts it as JSON.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ScanRequest))]
#[serde(deny_unknown_fields)]
pub struct ScanSpec {
    /// Addresses, CIDR blocks, ranges (`a-b`), host names (every address scanned, the name
    /// sent as SNI) and `host:port` items.
    pub targets: Vec<String>,
    /// Ports and ranges (`443,8443,9000-9010`), or `default` (common TLS ports, the
    /// default).
    #[serde(default)]
    pub ports: Option<String>,
    /// Server names to try on every address target.
    #[serde(default)]
    pub sni: Vec<String>,
    /// Send no server name at all.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(default = false))]
    pub no_sni: bool,
    /// Overrides of the protocol spoken before TLS, `proto:port` (`smtp:2525`, `none:25`).
    /// Ports 25/587 (SMTP), 143 (IMAP), 110 (POP3) and 389 (LDAP) use STARTTLS by default.
    #[serde(default)]
    pub starttls: Vec<String>,
}

impl ScanSpec {
    /// Parse targets and ports, resolve host names, and build the plan.
    pub async fn plan(&self) -> Result<ScanPlan, Error> {
        if self.targets.is_empty() {
            return Err(Error::Target("no targets".into()));
        }
        let targets = self
            .targets
            .iter()
            .map(|t| t.parse::<Target>())
            .collect::<Result<Vec<_>, _>>()?;
        let ports: PortSet = self.ports.as_deref().unwrap_or("default").parse()?;
        let sni = if self.no_sni {
            SniMode::None
        } else if self.sni.is_empty() {
            SniMode::Auto
        } else {
            SniMode::Names(self.sni.clone())
        };
        let mut plan = ScanPlan::resolve(&targets, ports, sni).await?;
        for item in &self.starttls {
            let bad = || Error::Option(format!("starttls {item:?}"));
            let (proto, port) = item.split_once(':').ok_or_else(bad)?;
            let port: u16 = port.parse().map_err(|_| bad())?;
            let proto = match proto {
                "none" | "tls" => None,
                p => Some(StartTls::from_name(p).ok_or_else(bad)?),
            };
            plan = plan.with_starttls(port, proto);
        }
        Ok(plan)
    }
}
