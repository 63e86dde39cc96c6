//! Master addresses as users write them (`host:port`, `http://host:port`)
//! turned into the URIs tonic connects to.

use super::DriverError;

pub use agora_proto::masters::DEFAULT_MASTER_PORT;

/// Turns `127.0.0.1:5050`, `http://master:5050` or `master` (default port)
/// into `http://host:port`. TLS is not supported yet.
pub fn master_uri(address: &str) -> Result<String, DriverError> {
    let invalid = |reason: &str| DriverError::InvalidAddress {
        address: address.to_owned(),
        reason: reason.to_owned(),
    };
    let trimmed = address.trim().trim_end_matches('/');
    let authority = match trimmed.split_once("://") {
        None => trimmed,
        Some(("http", rest)) => rest,
        Some(("https", _)) => return Err(invalid("TLS (https) is not supported; use http://")),
        Some((scheme, _)) => return Err(invalid(&format!("unknown scheme {scheme:?}; use http://"))),
    };
    if authority.is_empty() {
        return Err(invalid("no host"));
    }
    if authority.contains('/') {
        return Err(invalid("a master address is host:port, without a path"));
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((host, "")) => (host, None),
            Some((host, rest)) => (
                host,
                Some(rest.strip_prefix(':').ok_or_else(|| invalid("junk after ]"))?),
            ),
            None => return Err(invalid("unclosed [")),
        },
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    if host.is_empty() {
        return Err(invalid("no host"));
    }
    let port = match port {
        None => DEFAULT_MASTER_PORT,
        Some(port) => port
            .parse::<u16>()
            .map_err(|_| invalid(&format!("port {port:?} is not a number from 0 to 65535")))?,
    };
    let uri = if authority.starts_with('[') {
        format!("http://[{host}]:{port}")
    } else {
        format!("http://{host}:{port}")
    };
    tonic::transport::Endpoint::from_shared(uri.clone()).map_err(|e| invalid(&e.to_string()))?;
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_with_or_without_scheme() {
        assert_eq!(master_uri("127.0.0.1:5050").expect("ok"), "http://127.0.0.1:5050");
        assert_eq!(master_uri(" http://m1:7000/ ").expect("ok"), "http://m1:7000");
        assert_eq!(master_uri("master").expect("ok"), "http://master:5050");
        assert_eq!(master_uri("[::1]:6000").expect("ok"), "http://[::1]:6000");
        assert_eq!(master_uri("[::1]").expect("ok"), "http://[::1]:5050");
    }

    #[test]
    fn rejects_what_cannot_work() {
        for bad in [
            "",
            "https://m:5050",
            "ftp://m",
            "m:5050/api",
            "m:notaport",
            ":5050",
            "m:99999",
            "[::1",
        ] {
            assert!(
                matches!(master_uri(bad), Err(DriverError::InvalidAddress { .. })),
                "{bad:?} should be rejected"
            );
        }
    }
}
