//! Runs testsupport's [`Slapd`] for a benchmark: `test-slapd LDIF_FILE
//! URI_FILE` loads the entries of LDIF_FILE (below `ou=people`), writes
//! the ldap:// URI to URI_FILE, then serves until its stdin reaches EOF
//! (the script's end closes it) and stops slapd.

use std::io::Read as _;

use yubiotp_testsupport::Slapd;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(ldif), Some(out)) = (args.next(), args.next()) else {
        eprintln!("usage: test-slapd LDIF_FILE URI_FILE");
        std::process::exit(2);
    };
    let ldif = std::fs::read_to_string(ldif).expect("read LDIF");
    let dir = Slapd::start(&ldif).expect("start slapd");
    std::fs::write(out, dir.uri()).expect("write URI file");
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    drop(dir);
}
