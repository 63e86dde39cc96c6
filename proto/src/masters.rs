//! A client's list of masters, and following the leader through it.
//!
//! The SDK driver, the agent's link and the CLI each take a list of master
//! addresses and try them in turn. A master that is not the leader refuses
//! with the leader's `host:port` ([`crate::leader`]); [`MasterList::redirect`]
//! finds that master in the list (or adds it) and makes it the next one tried.
//! Redirects in a row are bounded ([`MAX_REDIRECTS`]) so that masters that
//! point at each other (a stale view during an election) cannot make a client
//! spin: past the bound it backs off as after any failure.
//!
//! Pure string handling, no tonic: the crates without their I/O features use
//! none, and the three clients share one notion of "the same master".

/// The port a master listens on when an address names none.
pub const DEFAULT_MASTER_PORT: u16 = 5050;

/// Redirects followed without a delay before a client backs off. One is
/// enough when the masters agree on the leader; a few more let a client
/// follow a leader that changed while it was being redirected.
pub const MAX_REDIRECTS: u32 = 3;

/// A master's address reduced to what identifies it: the host (lowercase,
/// without IPv6 brackets) and the port.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MasterAddr {
    host: String,
    port: u16,
}

impl MasterAddr {
    /// Reads `host`, `host:port`, `http://host:port/` or `[v6]:port`; the
    /// port defaults to [`DEFAULT_MASTER_PORT`]. `None` for anything else
    /// (another scheme, a path, an empty host, a bad port).
    pub fn parse(address: &str) -> Option<Self> {
        let trimmed = address.trim().trim_end_matches('/');
        let authority = match trimmed.split_once("://") {
            None => trimmed,
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some(_) => return None,
        };
        if authority.contains(['/', '?', '#', '@']) || authority.chars().any(char::is_whitespace) {
            return None;
        }
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => {
                let (host, rest) = v6.split_once(']')?;
                let port = match rest {
                    "" => None,
                    _ => Some(rest.strip_prefix(':')?),
                };
                (host, port)
            }
            None => match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            },
        };
        if host.is_empty() {
            return None;
        }
        let port = match port {
            None => DEFAULT_MASTER_PORT,
            Some(port) => port.parse().ok()?,
        };
        Some(Self {
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// `http://host:port`, what the gRPC clients connect to.
    pub fn uri(&self) -> String {
        format!("http://{self}")
    }
}

impl std::fmt::Display for MasterAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Whether two addresses name the same master (same host, same port, the
/// default port filled in). Names are not resolved: `localhost` and
/// `127.0.0.1` are different masters to a client.
pub fn same_master(a: &str, b: &str) -> bool {
    match (MasterAddr::parse(a), MasterAddr::parse(b)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// What a client does with a refusal that names the leader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Redirect {
    /// Try the leader at once: [`MasterList::next_to_try`] returns it.
    Now {
        /// The leader's URI, as listed (or as added).
        uri: String,
        /// The leader differs from the last one this list heard of.
        new_leader: bool,
    },
    /// Too many redirects in a row: back off as after a failure; the
    /// leader is still the next master tried.
    AfterBackoff {
        /// The leader's URI, as listed (or as added).
        uri: String,
        /// The leader differs from the last one this list heard of.
        new_leader: bool,
    },
    /// The hint is not a master address: carry on as after a failure.
    Invalid,
}

/// The masters a client knows, which one it tries next, and the redirects
/// it has followed since it last backed off or was served.
#[derive(Clone, Debug)]
pub struct MasterList {
    /// URIs in the client's own form; listed ones first, then leaders
    /// learned from hints, in the order heard of.
    uris: Vec<String>,
    next: usize,
    redirects: u32,
    /// The last master known to lead (from a hint, or one that served).
    leader: Option<MasterAddr>,
}

impl MasterList {
    /// A list of `uris` (already in the form the client connects to, e.g.
    /// `http://host:port`); `None` when it is empty.
    pub fn new(uris: Vec<String>) -> Option<Self> {
        (!uris.is_empty()).then_some(Self {
            uris,
            next: 0,
            redirects: 0,
            leader: None,
        })
    }

    /// The masters, in order.
    pub fn uris(&self) -> &[String] {
        &self.uris
    }

    /// The master to try now; the one after it is tried next.
    pub fn next_to_try(&mut self) -> &str {
        let index = self.next % self.uris.len();
        self.next = (index + 1) % self.uris.len();
        &self.uris[index]
    }

    /// A master refused, naming `hint` (`host:port`) as the leader: it is
    /// the next master tried, added to the list if it is not there.
    pub fn redirect(&mut self, hint: &str) -> Redirect {
        let Some(leader) = MasterAddr::parse(hint) else {
            return Redirect::Invalid;
        };
        let index = match self
            .uris
            .iter()
            .position(|uri| MasterAddr::parse(uri).as_ref() == Some(&leader))
        {
            Some(index) => index,
            None => {
                self.uris.push(leader.uri());
                self.uris.len() - 1
            }
        };
        self.next = index;
        let new_leader = self.leader.as_ref() != Some(&leader);
        self.leader = Some(leader);
        self.redirects = self.redirects.saturating_add(1);
        let uri = self.uris[index].clone();
        if self.redirects > MAX_REDIRECTS {
            Redirect::AfterBackoff { uri, new_leader }
        } else {
            Redirect::Now { uri, new_leader }
        }
    }

    /// The client backs off: redirects count from zero again.
    pub fn backing_off(&mut self) {
        self.redirects = 0;
    }

    /// The master at `uri` served (it leads): redirects count from zero
    /// again. True if it is not the leader last heard of.
    pub fn served(&mut self, uri: &str) -> bool {
        self.redirects = 0;
        let served = MasterAddr::parse(uri);
        let changed = served.is_some() && served != self.leader;
        if changed {
            self.leader = served;
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_match_in_any_written_form() {
        assert!(same_master("http://127.0.0.1:5051", "127.0.0.1:5051"));
        assert!(same_master("http://Master-1:5050/", "master-1"));
        assert!(same_master("[::1]:6000", "http://[::1]:6000"));
        assert!(same_master("[::1]", "[::1]:5050"));
        assert!(!same_master("127.0.0.1:5050", "127.0.0.1:5051"));
        assert!(!same_master("localhost:5050", "127.0.0.1:5050"));
        assert!(!same_master("https://m:5050", "m:5050"));
        for bad in ["", ":5050", "m:port", "m:99999", "m:1/path", "[::1", "u@m:1"] {
            assert_eq!(MasterAddr::parse(bad), None, "{bad:?}");
        }
        let v6 = MasterAddr::parse("[::1]:7").expect("valid");
        assert_eq!(v6.uri(), "http://[::1]:7");
    }

    #[test]
    fn a_redirect_goes_to_the_listed_leader_or_adds_it() {
        let mut list = MasterList::new(vec!["http://a:1".to_owned(), "http://b:2".to_owned()]).expect("not empty");
        assert_eq!(list.next_to_try(), "http://a:1");
        assert_eq!(
            list.redirect("b:2"),
            Redirect::Now {
                uri: "http://b:2".to_owned(),
                new_leader: true
            }
        );
        assert_eq!(list.next_to_try(), "http://b:2");
        assert!(!list.served("http://b:2"), "the hint already named it");
        assert_eq!(
            list.redirect("c:3"),
            Redirect::Now {
                uri: "http://c:3".to_owned(),
                new_leader: true
            }
        );
        assert_eq!(list.uris().len(), 3);
        assert_eq!(list.next_to_try(), "http://c:3");
        // Rotation goes on through the whole list, the added master included.
        assert_eq!(list.next_to_try(), "http://a:1");
        assert_eq!(list.redirect("not an address"), Redirect::Invalid);
    }

    #[test]
    fn masters_pointing_at_each_other_make_the_client_back_off() {
        let mut list = MasterList::new(vec!["http://a:1".to_owned(), "http://b:2".to_owned()]).expect("not empty");
        let mut immediate = 0;
        loop {
            let tried = list.next_to_try().to_owned();
            let hint = if tried == "http://a:1" { "b:2" } else { "a:1" };
            match list.redirect(hint) {
                Redirect::Now { .. } => immediate += 1,
                Redirect::AfterBackoff { .. } => break,
                Redirect::Invalid => panic!("valid hint"),
            }
        }
        assert_eq!(immediate, MAX_REDIRECTS);
        list.backing_off();
        assert!(matches!(list.redirect("a:1"), Redirect::Now { .. }));
    }

    #[test]
    fn an_empty_list_is_refused() {
        assert!(MasterList::new(Vec::new()).is_none());
    }
}
