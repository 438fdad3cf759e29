//! `yubiotp-resolve NAME`: the resolver helper of pam_yubiotp's cloud
//! backend (installed as /usr/libexec/yubiotp/yubiotp-resolve). Calls
//! `getaddrinfo` for NAME and prints `addr <ip>` lines and `end`, or one
//! `error <message>` line; the module kills it at its deadline. See
//! `pam_yubiotp::net::resolve`.

fn main() -> std::process::ExitCode {
    pam_yubiotp::net::resolve::helper_main()
}
