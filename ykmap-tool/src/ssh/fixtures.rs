//! Test fixtures shared by the checker's unit tests: Debian 12's stock
//! sshd settings and PAM files, and the key-then-OTP edits of them.

use super::{Problem, ProblemKind};

/// `sshd -T` of Debian 12's stock sshd_config (trimmed to the lines
/// that matter plus a few neighbours), as printed by OpenSSH 9.2p1.
pub(super) const DEBIAN_STOCK: &str = "\
port 22
addressfamily any
listenaddress [::]:22
listenaddress 0.0.0.0:22
usepam yes
logingracetime 120
x11displayoffset 10
maxauthtries 6
maxsessions 10
clientaliveinterval 0
clientalivecountmax 3
permitrootlogin without-password
ignorerhosts yes
ignoreuserknownhosts no
hostbasedauthentication no
hostbasedusesnamefrompacketonly no
pubkeyauthentication yes
kerberosauthentication no
gssapiauthentication no
passwordauthentication yes
kbdinteractiveauthentication no
printmotd no
printlastlog yes
x11forwarding yes
strictmodes yes
permitemptypasswords no
authorizedkeysfile .ssh/authorized_keys .ssh/authorized_keys2
authenticationmethods any
subsystem sftp /usr/lib/openssh/sftp-server
";

pub(super) fn key_then_otp_sshd() -> String {
    DEBIAN_STOCK
        .replace(
            "kbdinteractiveauthentication no",
            "kbdinteractiveauthentication yes",
        )
        .replace(
            "authenticationmethods any",
            "authenticationmethods publickey,keyboard-interactive:pam",
        )
}

/// Debian 12's /etc/pam.d/sshd, auth part first.
pub(super) const DEBIAN_SSHD_PAM: &str = "\
# PAM configuration for the Secure Shell service

# Standard Un*x authentication.
@include common-auth

# Disallow non-root logins when /etc/nologin exists.
account    required     pam_nologin.so
@include common-account
session [success=ok ignore=ignore module_unknown=ignore default=bad]        pam_selinux.so close
session    required     pam_loginuid.so
@include common-session
@include common-password
";

pub(super) const DEBIAN_COMMON_AUTH: &str = "\
auth\t[success=1 default=ignore]\tpam_unix.so nullok
auth\trequisite\t\t\tpam_deny.so
auth\trequired\t\t\tpam_permit.so
auth\toptional\t\t\tpam_cap.so
";

pub(super) fn key_then_otp_stack() -> String {
    DEBIAN_SSHD_PAM.replace("@include common-auth", "auth required pam_yubiotp.so")
}

pub(super) fn kinds(p: &[Problem]) -> Vec<ProblemKind> {
    let mut k: Vec<_> = p.iter().map(|p| p.kind).collect();
    k.sort();
    k.dedup();
    k
}

pub(super) fn loader(name: &str) -> Option<String> {
    match name {
        "common-auth" => Some(DEBIAN_COMMON_AUTH.to_string()),
        "common-account" => Some("account required pam_unix.so\n".into()),
        "common-session" => Some("session required pam_unix.so\n".into()),
        "common-password" => Some("password required pam_unix.so\n".into()),
        _ => None,
    }
}
