//! What a scan request carries, as a person or a client writes it: targets, ports, server
//! names and STARTTLS overrides as text. The CLI builds it (and plans a local scan from it);
//! the server accepts it as JSON and plans it the same way.

use serde::{Deserialize, Serialize};

use crate::{Error, PortSet, ScanPlan, SniMode, StartTls, Target};

/// What a scan request carries: the CLI builds it, the server accepts it as JSON.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ScanSpec {
    /// Targets as written.
    pub targets: Vec<String>,
    /// Port list (`default` when absent).
    #[serde(default)]
    pub ports: Option<String>,
    /// Server names to try on every address.
    #[serde(default)]
    pub sni: Vec<String>,
    /// Send no server name at all.
    #[serde(default)]
    pub no_sni: bool,
    /// STARTTLS overrides, `proto:port`.
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
