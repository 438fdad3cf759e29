//! A real OpenLDAP `slapd` (Debian's `slapd` package, installed by
//! scripts/setup.sh) for the LDAP mapping tests: its own slapd.conf and mdb
//! database in a scratch directory, loaded with `slapadd`, listening on
//! 127.0.0.1 only (ldap:// with StartTLS, and ldaps://, with a certificate
//! of a [`TestPki`]), killed and reaped on drop. The system slapd (if any)
//! is never touched. [`SlapdOptions`] make the key attribute readable only
//! by its owner (and the service account), or demand a client certificate
//! (one issued by the same CA is written beside the server's).

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;

use crate::pki::{CertKind, TestPki};

/// The suffix of the test directory.
pub const SUFFIX: &str = "dc=example,dc=org";
/// The people branch.
pub const PEOPLE: &str = "ou=people,dc=example,dc=org";
/// The service account that may bind.
pub const BIND_DN: &str = "cn=reader,dc=example,dc=org";
/// Its password.
pub const BIND_PW: &str = "reader-secret-pw";
/// The slapd binary.
pub const SLAPD: &str = "/usr/sbin/slapd";

/// The schema for a `yubiKeyId` attribute (as sites add for pam_yubico).
const SCHEMA: &str = "\
attributetype ( 1.3.6.1.4.1.99999.1.1 NAME 'yubiKeyId'
  EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
objectclass ( 1.3.6.1.4.1.99999.2.1 NAME 'yubiKeyUser' SUP top AUXILIARY
  MAY yubiKeyId )
";

/// How [`Slapd::start_with`] sets the server up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlapdOptions {
    /// `yubiKeyId` readable only by the entry itself (a bind as the user)
    /// and [`BIND_DN`]; an anonymous search gets the entry without it.
    pub private_keys: bool,
    /// `TLSVerifyClient demand`: TLS (ldaps:// and StartTLS) only with a
    /// client certificate from the test CA.
    pub verify_client: bool,
}

/// True when slapd is installed.
#[must_use]
pub fn available() -> bool {
    Path::new(SLAPD).exists() && Path::new("/usr/sbin/slapadd").exists()
}

fn pem(label: &str, der: &[u8]) -> String {
    let b = base64::engine::general_purpose::STANDARD.encode(der);
    let mut s = format!("-----BEGIN {label}-----\n");
    for chunk in b.as_bytes().chunks(64) {
        s.push_str(core::str::from_utf8(chunk).unwrap_or(""));
        s.push('\n');
    }
    let _ = writeln!(s, "-----END {label}-----");
    s
}

/// One LDIF attribute line, base64 when the value needs it.
#[must_use]
pub fn ldif_line(attr: &str, value: &str) -> String {
    let safe = !value.is_empty()
        && value.bytes().all(|b| (0x20..0x7f).contains(&b))
        && !value.starts_with([' ', ':', '<'])
        && !value.ends_with(' ');
    if safe {
        format!("{attr}: {value}\n")
    } else {
        format!(
            "{attr}:: {}\n",
            base64::engine::general_purpose::STANDARD.encode(value.as_bytes())
        )
    }
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A running slapd.
#[derive(Debug)]
pub struct Slapd {
    child: Option<Child>,
    /// Its scratch directory (config, database, certificates).
    pub dir: tempfile::TempDir,
    /// The ldap:// port.
    pub port: u16,
    /// The ldaps:// port.
    pub ldaps_port: u16,
    /// The test CA file (PEM) that signed the server certificate.
    pub cafile: PathBuf,
    /// An unrelated CA's file (PEM).
    pub unknown_cafile: PathBuf,
    /// A client certificate (PEM) issued by the test CA.
    pub client_cert: PathBuf,
    /// Its key (PEM, PKCS#8; copy it with the mode a test needs).
    pub client_key: PathBuf,
}

impl Slapd {
    /// Starts slapd with the base entries plus `ldif` (entries below
    /// [`PEOPLE`]), and waits (bounded) until it accepts connections.
    ///
    /// # Errors
    /// slapd or slapadd failing, or not listening within 20 s.
    pub fn start(ldif: &str) -> io::Result<Self> {
        Self::start_with(ldif, SlapdOptions::default())
    }

    /// [`Slapd::start`] with `opts`.
    ///
    /// # Errors
    /// slapd or slapadd failing, or not listening within 20 s.
    pub fn start_with(ldif: &str, opts: SlapdOptions) -> io::Result<Self> {
        let dir = crate::tempdir();
        let d = dir.path();
        let pki = TestPki::generate()?;
        let cafile = pki.write_ca(d)?;
        let unknown_cafile = d.join("unknown-ca.pem");
        let id = pki.identity(CertKind::Good);
        let chain: String = id.chain.iter().map(|c| pem("CERTIFICATE", c)).collect();
        fs::write(d.join("server.pem"), chain)?;
        fs::write(d.join("server.key"), pem("PRIVATE KEY", &id.key_der))?;
        let client = pki.client_identity();
        let client_cert = d.join("client.pem");
        let client_key = d.join("client.key");
        let chain: String = client.chain.iter().map(|c| pem("CERTIFICATE", c)).collect();
        fs::write(&client_cert, chain)?;
        fs::write(&client_key, pem("PRIVATE KEY", &client.key_der))?;
        let verify = if opts.verify_client {
            "TLSVerifyClient demand\n"
        } else {
            ""
        };
        let key_acl = if opts.private_keys {
            format!(
                "access to attrs=yubiKeyId by self read by dn.exact=\"{BIND_DN}\" read by * none\n"
            )
        } else {
            String::new()
        };
        fs::write(d.join("yubikey.schema"), SCHEMA)?;
        fs::create_dir(d.join("db"))?;
        let conf = format!(
            "include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
include {dir}/yubikey.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {dir}/slapd.pid
argsfile {dir}/slapd.args
TLSCACertificateFile {dir}/ca.pem
TLSCertificateFile {dir}/server.pem
TLSCertificateKeyFile {dir}/server.key
{verify}database mdb
maxsize 16777216
suffix \"{SUFFIX}\"
rootdn \"cn=admin,{SUFFIX}\"
rootpw admin-secret
directory {dir}/db
access to attrs=userPassword by self write by anonymous auth by * none
{key_acl}access to * by * read
",
            dir = d.display()
        );
        fs::write(d.join("slapd.conf"), conf)?;
        let mut data = format!(
            "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: example\ndc: example\n\n\
             dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n\
             dn: {BIND_DN}\nobjectClass: person\nobjectClass: simpleSecurityObject\ncn: reader\nsn: reader\nuserPassword: {BIND_PW}\n\n"
        );
        data.push_str(ldif);
        fs::write(d.join("data.ldif"), data)?;
        let out = Command::new("/usr/sbin/slapadd")
            .arg("-f")
            .arg(d.join("slapd.conf"))
            .arg("-l")
            .arg(d.join("data.ldif"))
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "slapadd: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        let port = free_port()?;
        let ldaps_port = free_port()?;
        let child = Command::new(SLAPD)
            .arg("-f")
            .arg(d.join("slapd.conf"))
            .arg("-h")
            .arg(format!(
                "ldap://127.0.0.1:{port}/ ldaps://127.0.0.1:{ldaps_port}/"
            ))
            // Any -d keeps slapd in the foreground (a child we can reap).
            .args(["-d", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let mut s = Self {
            child: Some(child),
            dir,
            port,
            ldaps_port,
            cafile,
            unknown_cafile,
            client_cert,
            client_key,
        };
        for _ in 0..400 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok()
                && TcpStream::connect(("127.0.0.1", ldaps_port)).is_ok()
            {
                return Ok(s);
            }
            if let Some(c) = s.child.as_mut()
                && let Some(st) = c.try_wait()?
            {
                return Err(io::Error::other(format!("slapd exited: {st}")));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(io::Error::other("slapd did not listen within 20 s"))
    }

    /// `ldap://127.0.0.1:PORT`.
    #[must_use]
    pub fn uri(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// `ldaps://localhost:PORT` (the certificate names localhost and
    /// 127.0.0.1).
    #[must_use]
    pub fn ldaps_uri(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.ldaps_port)
    }

    /// Stops slapd (SIGKILL: the database is scratch) and reaps it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}
