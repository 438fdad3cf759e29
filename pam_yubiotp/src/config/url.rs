//! Validation server and proxy URLs: `http(s)://host[:port][/path]`, nothing
//! else (no user info, query or fragment).

use core::fmt;

/// A parsed endpoint or proxy URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    /// `https://` (else `http://`).
    pub https: bool,
    /// Host name or IP literal, without IPv6 brackets.
    pub host: String,
    /// Port (default 443 / 80).
    pub port: u16,
    /// Path, starting with `/`.
    pub path: String,
    text: String,
}

impl ServerUrl {
    /// Parses a validation endpoint.
    ///
    /// # Errors
    /// A short reason; the URL holds no secret, so it may be quoted.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (https, rest) = if let Some(r) = s.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = s.strip_prefix("http://") {
            (false, r)
        } else {
            // Not quoted: without a scheme this may be anything (the API
            // key pasted in the wrong place).
            return Err("must start with https:// or http:// (value not shown)".into());
        };
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) || !s.is_ascii() {
            return Err(format!(
                "{}: spaces, control or non-ASCII characters",
                shown(s)
            ));
        }
        if rest.contains(['?', '#', '@']) {
            return Err(format!(
                "{}: user info, query or fragment not allowed",
                shown(s)
            ));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, "/"),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("{}: unclosed IPv6 literal", shown(s)))?;
            if h.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(format!("{}: bad IPv6 literal", shown(s)));
            }
            (h, after.strip_prefix(':'))
        } else {
            match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty()
            || (!host.contains(':')
                && !host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'))
        {
            return Err(format!("{}: bad host name", shown(s)));
        }
        let port = match port {
            None => {
                if https {
                    443
                } else {
                    80
                }
            }
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("{}: bad port", shown(s)))?,
        };
        Ok(Self {
            https,
            host: host.to_ascii_lowercase(),
            port,
            path: path.to_string(),
            text: s.to_string(),
        })
    }

    /// Parses a proxy URL: an `http://` proxy (HTTPS targets go through it
    /// with CONNECT). TLS to the proxy itself and SOCKS are not supported.
    ///
    /// # Errors
    /// A short reason.
    pub fn parse_proxy(s: &str) -> Result<Self, String> {
        if s.starts_with("socks") {
            return Err(format!("{}: SOCKS proxies are not supported", shown(s)));
        }
        let url = Self::parse(s)?;
        if url.https {
            return Err(format!(
                "{}: TLS to the proxy is not supported; use http://host:port (HTTPS targets are tunnelled with CONNECT)",
                shown(s)
            ));
        }
        Ok(url)
    }

    /// `host:port` as it goes in a `Host:` header or a CONNECT line.
    #[must_use]
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// A proxy URL: `http://host[:port]` only (see [`ServerUrl::parse_proxy`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpProxy(ServerUrl);

impl HttpProxy {
    /// Parses a proxy URL.
    ///
    /// # Errors
    /// A short reason.
    pub fn parse(s: &str) -> Result<Self, String> {
        ServerUrl::parse_proxy(s).map(Self)
    }

    /// The proxy's URL (always `http://`).
    #[must_use]
    pub fn url(&self) -> &ServerUrl {
        &self.0
    }
}

impl fmt::Display for HttpProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// `s` quoted for an error message, without any user info: pam_yubico's
/// proxies may be written `socks5h://user:password@host:1080`.
fn shown(s: &str) -> String {
    match s.rsplit_once('@') {
        Some((before, host)) => {
            let scheme = before.split_once("://").map_or("", |(sc, _)| sc);
            format!("\"{scheme}://(user info not shown)@{host}\"")
        }
        None => format!("{s:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        let u = ServerUrl::parse("https://api.yubico.com/wsapi/2.0/verify").unwrap();
        assert!(u.https);
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("api.yubico.com", 443, "/wsapi/2.0/verify")
        );
        let u = ServerUrl::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!((u.port, u.path.as_str(), u.https), (8080, "/", false));
        let u = ServerUrl::parse("https://[::1]:9/v").unwrap();
        assert_eq!(
            (u.host.as_str(), u.authority()),
            ("::1", "[::1]:9".to_string())
        );
        for bad in [
            "ftp://x/",
            "https://",
            "https://u:p@h/",
            "https://h/?a=b",
            "https://h/#f",
            "https://h:0/",
            "https://h:99999/",
            "https://h /",
            "https://h_x/",
            "api.yubico.com",
        ] {
            assert!(ServerUrl::parse(bad).is_err(), "{bad}");
        }
        assert!(ServerUrl::parse_proxy("socks5://h:1080").is_err());
        for secret in ["socks5h://u:Pw-S3cret@h:1080", "http://u:Pw-S3cret@h:3128"] {
            let e = ServerUrl::parse_proxy(secret).unwrap_err();
            assert!(!e.contains("Pw-S3cret") && e.contains("@h:"), "{e}");
        }
        assert!(ServerUrl::parse_proxy("https://proxy:3128").is_err());
        assert!(ServerUrl::parse_proxy("http://proxy:3128").is_ok());
    }
}
