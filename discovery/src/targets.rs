//! Targets, port sets and SNI modes, and their lazy expansion into endpoints.
//!
//! Networks and ranges are kept as `(first, last)` integer pairs and walked one address at a
//! time, so a /8 (or an IPv6 /64) costs the same memory as a single address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use ipnetwork::IpNetwork;
use serde::Serialize;

use crate::error::Error;
use crate::starttls::StartTls;

/// Common TLS ports, scanned when no ports are given.
pub const DEFAULT_PORTS: &[u16] = &[
    443, 465, 636, 853, 993, 995, 1443, 2376, 3269, 4443, 5061, 5671, 5986, 6443, 6514, 8443, 8883,
    9093, 9443, 10250,
];

/// One scan target as the user wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An address or a CIDR block (a single address is a /32 or /128).
    Network(IpNetwork),
    /// An inclusive address range, both ends of the same family.
    Range(IpAddr, IpAddr),
    /// A host name, resolved before scanning; every address is scanned with the name as SNI.
    Host(String),
    /// Any of the above with one explicit port (`host:port`, `10.0.0.1:8443`, `[::1]:443`).
    WithPort(Box<Target>, u16),
}

impl FromStr for Target {
    type Err = Error;

    /// Parse `10.0.0.0/24`, `10.0.0.1-10.0.0.9`, `2001:db8::/120`, `::1`, `host`,
    /// `host:443`, `10.0.0.1:443` or `[2001:db8::1]:443`.
    fn from_str(s: &str) -> Result<Target, Error> {
        let bad = |why: &str| Error::Target(format!("{s:?}: {why}"));
        let s = s.trim();
        if s.is_empty() {
            return Err(bad("empty target"));
        }
        if let Ok(ip) = IpAddr::from_str(s) {
            return Ok(Target::Network(IpNetwork::from(ip)));
        }
        if let Some(rest) = s.strip_prefix('[') {
            let (addr, port) = rest
                .split_once("]:")
                .ok_or_else(|| bad("expected [address]:port"))?;
            let ip = Ipv6Addr::from_str(addr).map_err(|_| bad("not an IPv6 address"))?;
            return Ok(Target::WithPort(
                Box::new(Target::Network(IpNetwork::from(IpAddr::V6(ip)))),
                parse_port(port).map_err(|e| bad(&e))?,
            ));
        }
        if s.contains('/') {
            return IpNetwork::from_str(s)
                .map(Target::Network)
                .map_err(|e| bad(&e.to_string()));
        }
        if let Some((a, b)) = s.split_once('-')
            && let (Ok(a), Ok(b)) = (IpAddr::from_str(a.trim()), IpAddr::from_str(b.trim()))
        {
            if a.is_ipv4() != b.is_ipv4() {
                return Err(bad("range ends are of different address families"));
            }
            if ip_to_u128(a) > ip_to_u128(b) {
                return Err(bad("range start is after its end"));
            }
            return Ok(Target::Range(a, b));
        }
        if let Some((host, port)) = s.rsplit_once(':') {
            if host.contains(':') {
                return Err(bad("IPv6 addresses with a port are written [address]:port"));
            }
            let port = parse_port(port).map_err(|e| bad(&e))?;
            let inner: Target = host.parse()?;
            if matches!(inner, Target::WithPort(..)) {
                return Err(bad("two ports"));
            }
            return Ok(Target::WithPort(Box::new(inner), port));
        }
        if is_hostname(s) {
            return Ok(Target::Host(s.to_ascii_lowercase()));
        }
        Err(bad("not an address, network, range or host name"))
    }
}

fn parse_port(s: &str) -> Result<u16, String> {
    match s.trim().parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("{s:?} is not a port (1-65535)")),
        Ok(p) => Ok(p),
    }
}

fn is_hostname(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Parse targets from text: one or more per line, separated by whitespace or commas; `#`
/// starts a comment. For files and stdin.
pub fn parse_target_list(text: &str) -> Result<Vec<Target>, Error> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(|l| l.split([',', ' ', '\t']))
        .filter(|t| !t.trim().is_empty())
        .map(Target::from_str)
        .collect()
}

/// A set of ports: single ports and inclusive ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSet(Vec<(u16, u16)>);

impl Default for PortSet {
    fn default() -> PortSet {
        PortSet(DEFAULT_PORTS.iter().map(|&p| (p, p)).collect())
    }
}

impl FromStr for PortSet {
    type Err = Error;

    /// Parse `443,8443,10000-10010` (`default` means [`DEFAULT_PORTS`]).
    fn from_str(s: &str) -> Result<PortSet, Error> {
        if s.trim() == "default" {
            return Ok(PortSet::default());
        }
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let range = match part.split_once('-') {
                Some((a, b)) => (parse_port(a), parse_port(b)),
                None => (parse_port(part), parse_port(part)),
            };
            match range {
                (Ok(a), Ok(b)) if a <= b => out.push((a, b)),
                (Ok(_), Ok(_)) => {
                    return Err(Error::Ports(format!("{part:?}: start is after end")));
                }
                (Err(e), _) | (_, Err(e)) => return Err(Error::Ports(e)),
            }
        }
        if out.is_empty() {
            return Err(Error::Ports(format!("{s:?}: no ports")));
        }
        Ok(PortSet(out))
    }
}

impl PortSet {
    /// Exactly these ports.
    pub fn list(ports: &[u16]) -> PortSet {
        PortSet(ports.iter().map(|&p| (p, p)).collect())
    }

    /// How many ports (duplicates counted).
    pub fn len(&self) -> u64 {
        self.0.iter().map(|(a, b)| u64::from(b - a) + 1).sum()
    }

    /// Whether the set is empty (never, once parsed).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The ports, in the order given.
    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        self.0.iter().flat_map(|&(a, b)| a..=b)
    }
}

/// Which server names to send.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SniMode {
    /// Host name targets send their name; addresses send none.
    #[default]
    Auto,
    /// Never send SNI.
    None,
    /// Address targets are probed once per name in the list; host name targets still send
    /// their own name.
    Names(Vec<String>),
}

/// One thing to probe: an address and port, the name to send, and the STARTTLS protocol
/// the port calls for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    /// Address and port.
    pub addr: SocketAddr,
    /// The server name sent in the handshake (and checked against the certificate).
    pub sni: Option<String>,
    /// The plaintext protocol spoken before TLS, if any.
    pub starttls: Option<StartTls>,
}

/// One source of addresses after name resolution: an inclusive integer range, or the
/// addresses of one host name.
#[derive(Debug, Clone)]
enum Source {
    Range { first: u128, last: u128, v6: bool },
    Host { name: String, addrs: Vec<IpAddr> },
}

impl Source {
    fn count(&self) -> u128 {
        match self {
            Source::Range { first, last, .. } => (last - first).saturating_add(1),
            Source::Host { addrs, .. } => addrs.len() as u128,
        }
    }

    fn contains_all(&self, allow: &[IpNetwork]) -> bool {
        match self {
            Source::Range { first, last, v6 } => allow.iter().any(|n| {
                let (a, b) = network_bounds(n);
                n.is_ipv6() == *v6 && a <= *first && *last <= b
            }),
            Source::Host { addrs, .. } => {
                addrs.iter().all(|ip| allow.iter().any(|n| n.contains(*ip)))
            }
        }
    }
}

/// Targets with host names resolved: ready to expand into endpoints.
#[derive(Debug, Clone)]
pub struct ScanPlan {
    sources: Vec<(Source, Option<u16>)>,
    ports: PortSet,
    sni: SniMode,
    starttls: Vec<(u16, Option<StartTls>)>,
}

fn ip_to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn u128_to_ip(n: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(n))
    } else {
        // Ranges of IPv4 sources never exceed u32::MAX.
        IpAddr::V4(Ipv4Addr::from(n as u32))
    }
}

fn network_bounds(n: &IpNetwork) -> (u128, u128) {
    match n {
        IpNetwork::V4(v4) => (
            u128::from(u32::from(v4.network())),
            u128::from(u32::from(v4.broadcast())),
        ),
        IpNetwork::V6(v6) => {
            let first = u128::from(v6.network());
            let host_bits = 128 - u32::from(v6.prefix());
            let last = if host_bits == 128 {
                u128::MAX
            } else {
                first | ((1u128 << host_bits) - 1)
            };
            (first, last)
        }
    }
}

impl ScanPlan {
    /// Resolve host names (every address of each name) and build the plan.
    pub async fn resolve(
        targets: &[Target],
        ports: PortSet,
        sni: SniMode,
    ) -> Result<ScanPlan, Error> {
        let mut sources = Vec::with_capacity(targets.len());
        for t in targets {
            let (inner, port) = match t {
                Target::WithPort(inner, p) => (inner.as_ref(), Some(*p)),
                other => (other, None),
            };
            let source = match inner {
                Target::Network(n) => {
                    let (first, last) = network_bounds(n);
                    Source::Range {
                        first,
                        last,
                        v6: n.is_ipv6(),
                    }
                }
                Target::Range(a, b) => Source::Range {
                    first: ip_to_u128(*a),
                    last: ip_to_u128(*b),
                    v6: a.is_ipv6(),
                },
                Target::Host(name) => {
                    let mut addrs: Vec<IpAddr> = tokio::net::lookup_host((name.as_str(), 0))
                        .await
                        .map_err(|e| Error::Resolve(format!("{name}: {e}")))?
                        .map(|a| a.ip())
                        .collect();
                    addrs.sort();
                    addrs.dedup();
                    if addrs.is_empty() {
                        return Err(Error::Resolve(format!("{name}: no addresses")));
                    }
                    Source::Host {
                        name: name.clone(),
                        addrs,
                    }
                }
                Target::WithPort(..) => {
                    return Err(Error::Target("a target has two ports".into()));
                }
            };
            sources.push((source, port));
        }
        Ok(ScanPlan {
            sources,
            ports,
            sni,
            starttls: Vec::new(),
        })
    }

    /// Speak `proto` (or, with `None`, plain TLS) on `port` instead of what the port number
    /// calls for: SMTP on 2525, or direct TLS on 25.
    pub fn with_starttls(mut self, port: u16, proto: Option<StartTls>) -> ScanPlan {
        self.starttls.retain(|(p, _)| *p != port);
        self.starttls.push((port, proto));
        self
    }

    fn starttls_for(&self, port: u16) -> Option<StartTls> {
        match self.starttls.iter().find(|(p, _)| *p == port) {
            Some((_, proto)) => *proto,
            None => StartTls::for_port(port),
        }
    }

    /// Refuse the plan unless every address it would probe lies in one of `allow`.
    pub fn check_allowed(&self, allow: &[IpNetwork]) -> Result<(), Error> {
        for (s, _) in &self.sources {
            if !s.contains_all(allow) {
                let what = match s {
                    Source::Range { first, last, v6 } => {
                        format!("{}-{}", u128_to_ip(*first, *v6), u128_to_ip(*last, *v6))
                    }
                    Source::Host { name, .. } => name.clone(),
                };
                return Err(Error::NotAllowed(what));
            }
        }
        Ok(())
    }

    fn names_per_address(&self, source: &Source) -> u128 {
        match (&self.sni, source) {
            (SniMode::Names(n), Source::Range { .. }) if !n.is_empty() => n.len() as u128,
            _ => 1,
        }
    }

    /// How many endpoints [`ScanPlan::endpoints`] yields (saturating), without expanding.
    pub fn len(&self) -> u64 {
        let total: u128 = self
            .sources
            .iter()
            .map(|(s, port)| {
                let ports = if port.is_some() {
                    1
                } else {
                    u128::from(self.ports.len())
                };
                s.count()
                    .saturating_mul(ports)
                    .saturating_mul(self.names_per_address(s))
            })
            .fold(0u128, u128::saturating_add);
        u64::try_from(total).unwrap_or(u64::MAX)
    }

    /// Whether the plan yields no endpoints.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every endpoint, generated lazily: address by address, then port by port, then name.
    pub fn endpoints(&self) -> impl Iterator<Item = Endpoint> + Send + '_ {
        self.sources.iter().flat_map(move |(source, port)| {
            let addrs: Box<dyn Iterator<Item = (IpAddr, Option<&str>)> + Send + '_> = match source {
                Source::Range { first, last, v6 } => {
                    Box::new((*first..=*last).map(move |n| (u128_to_ip(n, *v6), None)))
                }
                Source::Host { name, addrs } => {
                    Box::new(addrs.iter().map(move |ip| (*ip, Some(name.as_str()))))
                }
            };
            addrs.flat_map(move |(ip, host)| {
                let ports: Box<dyn Iterator<Item = u16> + Send + '_> = match port {
                    Some(p) => Box::new(std::iter::once(*p)),
                    None => Box::new(self.ports.iter()),
                };
                ports.flat_map(move |p| {
                    self.names_for(host).into_iter().map(move |sni| Endpoint {
                        addr: SocketAddr::new(ip, p),
                        sni,
                        starttls: self.starttls_for(p),
                    })
                })
            })
        })
    }

    /// Whether the plan probes `addr` with server name `sni`: for telling which inventory
    /// endpoints a scan covered (and so which ones went away).
    pub fn covers(&self, addr: SocketAddr, sni: Option<&str>) -> bool {
        let n = ip_to_u128(addr.ip());
        self.sources.iter().any(|(source, port)| {
            let port_ok = match port {
                Some(p) => *p == addr.port(),
                None => self.ports.iter().any(|p| p == addr.port()),
            };
            let host = match source {
                Source::Range { first, last, v6 } => {
                    if *v6 != addr.is_ipv6() || n < *first || n > *last {
                        return false;
                    }
                    None
                }
                Source::Host { name, addrs } => {
                    if !addrs.contains(&addr.ip()) {
                        return false;
                    }
                    Some(name.as_str())
                }
            };
            port_ok && self.names_for(host).iter().any(|s| s.as_deref() == sni)
        })
    }

    fn names_for(&self, host: Option<&str>) -> Vec<Option<String>> {
        match (&self.sni, host) {
            (SniMode::None, _) => vec![None],
            (_, Some(h)) => vec![Some(h.to_string())],
            (SniMode::Names(names), None) if !names.is_empty() => {
                names.iter().cloned().map(Some).collect()
            }
            _ => vec![None],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets() {
        assert_eq!(
            "10.0.0.0/24".parse::<Target>().unwrap(),
            Target::Network("10.0.0.0/24".parse().unwrap())
        );
        assert!(matches!(
            "10.0.0.1-10.0.0.9".parse::<Target>().unwrap(),
            Target::Range(..)
        ));
        assert!(matches!(
            "[::1]:443".parse::<Target>().unwrap(),
            Target::WithPort(_, 443)
        ));
        assert!(matches!(
            "example.com:8443".parse::<Target>().unwrap(),
            Target::WithPort(_, 8443)
        ));
        assert_eq!(
            "Example.COM".parse::<Target>().unwrap(),
            Target::Host("example.com".into())
        );
        for bad in [
            "",
            "10.0.0.9-10.0.0.1",
            "10.0.0.1-::1",
            "a b",
            "host:0",
            "host:99999",
            "10.0.0.0/33",
        ] {
            assert!(bad.parse::<Target>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn parses_ports() {
        let p: PortSet = "443, 8000-8002".parse().unwrap();
        assert_eq!(p.iter().collect::<Vec<_>>(), vec![443, 8000, 8001, 8002]);
        assert!("9-1".parse::<PortSet>().is_err());
        assert!("".parse::<PortSet>().is_err());
        assert!("0".parse::<PortSet>().is_err());
        assert_eq!(PortSet::default().len(), DEFAULT_PORTS.len() as u64);
    }

    #[tokio::test]
    async fn slash_eight_is_streamed() {
        let plan = ScanPlan::resolve(
            &["10.0.0.0/8".parse().unwrap()],
            PortSet::list(&[443, 25]),
            SniMode::Auto,
        )
        .await
        .unwrap();
        assert_eq!(plan.len(), (1 << 24) * 2);
        let first: Vec<_> = plan.endpoints().take(3).collect();
        assert_eq!(first[0].addr, "10.0.0.0:443".parse().unwrap());
        assert_eq!(first[1].starttls, Some(StartTls::Smtp));
        assert_eq!(first[2].addr, "10.0.0.1:443".parse().unwrap());
        // A whole IPv6 /0 is just two integers too.
        let v6 = ScanPlan::resolve(
            &["::/0".parse().unwrap()],
            PortSet::list(&[1]),
            SniMode::None,
        )
        .await
        .unwrap();
        assert_eq!(v6.len(), u64::MAX);
        assert_eq!(v6.endpoints().nth(1).unwrap().addr.ip().to_string(), "::1");
    }

    #[tokio::test]
    async fn allowlist_and_names() {
        let plan = ScanPlan::resolve(
            &[
                "127.0.0.0/30".parse().unwrap(),
                "127.0.1.5:443".parse().unwrap(),
            ],
            PortSet::list(&[443]),
            SniMode::Names(vec!["a.test".into(), "b.test".into()]),
        )
        .await
        .unwrap();
        assert_eq!(plan.len(), 4 * 2 + 2);
        assert_eq!(plan.endpoints().count(), 10);
        assert!(
            plan.check_allowed(&["127.0.0.0/16".parse().unwrap()])
                .is_ok()
        );
        assert!(matches!(
            plan.check_allowed(&["127.0.0.0/24".parse().unwrap()]),
            Err(Error::NotAllowed(_))
        ));
        assert!(plan.check_allowed(&[]).is_err());
        assert!(plan.covers("127.0.0.3:443".parse().unwrap(), Some("b.test")));
        assert!(!plan.covers("127.0.0.3:443".parse().unwrap(), None));
        assert!(!plan.covers("127.0.0.4:443".parse().unwrap(), Some("a.test")));
        assert!(!plan.covers("127.0.0.3:444".parse().unwrap(), Some("a.test")));
        assert!(plan.covers("127.0.1.5:443".parse().unwrap(), Some("a.test")));
    }
}
