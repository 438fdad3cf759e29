//! Links pam_yubiotp.so with `-z nodelete`: once loaded it stays mapped
//! across `dlclose`. A long-running PAM host (one process doing many
//! pam_start/pam_end cycles, scripts/soak.sh) otherwise unloads and reloads
//! the module on every login, and each load of Rust's std takes a new
//! pthread TLS key that is never returned: after about a thousand logins
//! the host aborted with "out of TLS keys" (PTHREAD_KEYS_MAX is 1024).
fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
}
