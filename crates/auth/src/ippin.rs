//! IP allowlists ("IP pinning") for API keys.
//!
//! An [`IpAllowlist`] holds up to [`MAX_ENTRIES`] networks. Entries are CIDRs
//! (`10.0.0.0/8`, `2001:db8::/32`) or bare addresses, which mean a single host
//! (`/32` for IPv4, `/128` for IPv6). Host bits are cleared when parsing
//! (`10.0.0.5/24` is stored as `10.0.0.0/24`), and IPv4-mapped IPv6 networks
//! (`::ffff:10.0.0.0/104`) are stored as the IPv4 network they denote.
//!
//! An empty list allows every address. Client addresses in IPv4-mapped IPv6
//! form (`::ffff:203.0.113.7`, as seen on dual-stack sockets) match IPv4
//! networks.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// Maximum number of networks in one allowlist.
pub const MAX_ENTRIES: usize = 16;

/// Why an allowlist was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpAllowlistError {
    /// An entry is neither an IP address nor a CIDR network.
    #[error("invalid IP allowlist entry {entry:?} (expected an IP address or CIDR)")]
    Invalid {
        /// The offending entry (trimmed, and shortened if very long).
        entry: String,
    },
    /// More than [`MAX_ENTRIES`] entries.
    #[error("too many IP allowlist entries: {count} (at most {max})")]
    TooMany {
        /// Number of entries given.
        count: usize,
        /// The limit, [`MAX_ENTRIES`].
        max: usize,
    },
}

/// A list of networks that client addresses must fall in. Empty = allow all.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct IpAllowlist(Vec<IpNet>);

impl IpAllowlist {
    /// The empty list, which allows every address.
    pub const fn allow_all() -> Self {
        IpAllowlist(Vec::new())
    }

    /// Build from networks (normalized as described in the module docs).
    pub fn new(nets: Vec<IpNet>) -> Result<Self, IpAllowlistError> {
        if nets.len() > MAX_ENTRIES {
            return Err(IpAllowlistError::TooMany {
                count: nets.len(),
                max: MAX_ENTRIES,
            });
        }
        Ok(IpAllowlist(nets.into_iter().map(normalize).collect()))
    }

    /// Parse entries, each an IP address or a CIDR (surrounding whitespace is
    /// ignored). Fails on the first bad entry, or if there are too many.
    pub fn parse<I, S>(entries: I) -> Result<Self, IpAllowlistError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut nets = Vec::new();
        for (i, entry) in entries.into_iter().enumerate() {
            if i >= MAX_ENTRIES {
                // Count the rest without parsing or storing it.
                return Err(IpAllowlistError::TooMany {
                    count: i + 1,
                    max: MAX_ENTRIES,
                });
            }
            nets.push(parse_entry(entry.as_ref())?);
        }
        Self::new(nets)
    }

    /// Whether `ip` may connect: the list is empty, or some network contains it.
    pub fn allows(&self, ip: IpAddr) -> bool {
        if self.0.is_empty() {
            return true;
        }
        let canonical = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip) || net.contains(&canonical))
    }

    /// Whether the list is empty (allows everything).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The networks, in the order given.
    pub fn nets(&self) -> &[IpNet] {
        &self.0
    }

    /// The networks in CIDR form (`"10.0.0.0/8"`, `"203.0.113.7/32"`), for storage.
    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(IpNet::to_string).collect()
    }
}

impl fmt::Display for IpAllowlist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, net) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{net}")?;
        }
        Ok(())
    }
}

/// Parses a list separated by commas and/or whitespace; empty items are skipped.
impl FromStr for IpAllowlist {
    type Err = IpAllowlistError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(
            s.split(|c: char| c == ',' || c.is_whitespace())
                .filter(|item| !item.is_empty()),
        )
    }
}

fn parse_entry(raw: &str) -> Result<IpNet, IpAllowlistError> {
    let entry = raw.trim();
    if let Ok(net) = entry.parse::<IpNet>() {
        return Ok(normalize(net));
    }
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Ok(normalize(IpNet::from(ip)));
    }
    Err(IpAllowlistError::Invalid { entry: shorten(entry) })
}

/// Clear host bits; turn IPv4-mapped IPv6 networks into IPv4 networks.
fn normalize(net: IpNet) -> IpNet {
    if let IpNet::V6(v6) = net {
        if v6.prefix_len() >= 96 {
            if let Some(v4) = v6.network().to_ipv4_mapped() {
                if let Ok(n) = Ipv4Net::new(v4, v6.prefix_len() - 96) {
                    return IpNet::V4(n.trunc());
                }
            }
        }
        return IpNet::V6(Ipv6Net::trunc(&v6));
    }
    net.trunc()
}

fn shorten(s: &str) -> String {
    const MAX: usize = 64;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(MAX).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    fn list(entries: &[&str]) -> IpAllowlist {
        IpAllowlist::parse(entries).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn empty_allows_all() {
        let l = IpAllowlist::allow_all();
        assert!(l.is_empty());
        assert!(l.allows(ip("1.2.3.4")));
        assert!(l.allows(ip("::1")));
        assert_eq!(IpAllowlist::parse(Vec::<String>::new()), Ok(IpAllowlist::default()));
        assert_eq!("".parse::<IpAllowlist>(), Ok(IpAllowlist::default()));
    }

    #[test]
    fn bare_ips_are_single_hosts() {
        let l = list(&["203.0.113.7", " 2001:db8::1 "]);
        assert_eq!(l.to_strings(), vec!["203.0.113.7/32", "2001:db8::1/128"]);
        assert!(l.allows(ip("203.0.113.7")));
        assert!(!l.allows(ip("203.0.113.8")));
        assert!(l.allows(ip("2001:db8::1")));
        assert!(!l.allows(ip("2001:db8::2")));
    }

    #[test]
    fn cidrs_match_ranges_and_are_normalized() {
        let l = list(&["10.0.0.5/24", "2001:db8:abcd::/48"]);
        assert_eq!(l.to_strings(), vec!["10.0.0.0/24", "2001:db8:abcd::/48"]);
        assert!(l.allows(ip("10.0.0.0")));
        assert!(l.allows(ip("10.0.0.255")));
        assert!(!l.allows(ip("10.0.1.0")));
        assert!(l.allows(ip("2001:db8:abcd:1::9")));
        assert!(!l.allows(ip("2001:db8:abce::1")));
        let any4 = list(&["0.0.0.0/0"]);
        assert!(any4.allows(ip("8.8.8.8")));
        assert!(!any4.allows(ip("2001:db8::1")));
    }

    #[test]
    fn ipv4_mapped_clients_match_ipv4_nets() {
        let l = list(&["192.0.2.0/24"]);
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 10).to_ipv6_mapped());
        assert!(l.allows(mapped));
        assert!(!l.allows(IpAddr::V6(Ipv4Addr::new(192, 0, 3, 10).to_ipv6_mapped())));
        // IPv4-compatible (deprecated) or unrelated v6 addresses do not match.
        assert!(!l.allows(ip("::c000:20a")));
    }

    #[test]
    fn ipv4_mapped_entries_become_ipv4_nets() {
        let l = list(&["::ffff:192.0.2.0/120", "::ffff:198.51.100.1"]);
        assert_eq!(l.to_strings(), vec!["192.0.2.0/24", "198.51.100.1/32"]);
        assert!(l.allows(ip("192.0.2.77")));
        assert!(l.allows(ip("::ffff:198.51.100.1")));
        // A broad IPv6 network still matches mapped clients literally.
        let all6 = list(&["::/0"]);
        assert!(all6.allows(ip("::ffff:1.2.3.4")));
        assert!(!all6.allows(ip("1.2.3.4")));
    }

    #[test]
    fn junk_is_rejected_with_the_entry() {
        for bad in [
            "",
            "localhost",
            "1.2.3",
            "1.2.3.4/33",
            "::1/129",
            "1.2.3.4/",
            "10.0.0.0/8/8",
        ] {
            assert_eq!(
                IpAllowlist::parse(["1.1.1.1", bad]),
                Err(IpAllowlistError::Invalid {
                    entry: bad.trim().to_owned()
                }),
                "{bad:?}"
            );
        }
        let long = "9".repeat(10_000);
        match IpAllowlist::parse([long.as_str()]) {
            Err(IpAllowlistError::Invalid { entry }) => assert!(entry.len() < 100),
            other => panic!("{other:?}"),
        }
        let msg = IpAllowlist::parse(["nope"]).err().map(|e| e.to_string());
        assert_eq!(
            msg.as_deref(),
            Some("invalid IP allowlist entry \"nope\" (expected an IP address or CIDR)")
        );
    }

    #[test]
    fn at_most_sixteen_entries() {
        let entries: Vec<String> = (0..16).map(|i| format!("10.0.{i}.0/24")).collect();
        assert_eq!(
            list(&entries.iter().map(String::as_str).collect::<Vec<_>>())
                .nets()
                .len(),
            16
        );
        let too_many: Vec<String> = (0..17).map(|i| format!("10.0.{i}.0/24")).collect();
        assert_eq!(
            IpAllowlist::parse(&too_many),
            Err(IpAllowlistError::TooMany { count: 17, max: 16 })
        );
        let nets: Vec<IpNet> = (0..17).map(|_| IpNet::from(IpAddr::V6(Ipv6Addr::LOCALHOST))).collect();
        assert!(matches!(IpAllowlist::new(nets), Err(IpAllowlistError::TooMany { .. })));
    }

    #[test]
    fn from_str_and_display_roundtrip() {
        let l: IpAllowlist = "10.0.0.0/8, 192.0.2.1\n2001:db8::/32".parse().unwrap_or_default();
        assert_eq!(l.nets().len(), 3);
        assert_eq!(l.to_string(), "10.0.0.0/8,192.0.2.1/32,2001:db8::/32");
        assert_eq!(l.to_string().parse::<IpAllowlist>(), Ok(l.clone()));
        assert_eq!(IpAllowlist::parse(l.to_strings()), Ok(l));
    }
}
