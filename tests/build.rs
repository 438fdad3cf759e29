//! Compiles the C test application `driver/pam_driver.c` against libpam.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=driver/pam_driver.c");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default()).join("pam_driver");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let status = Command::new(&cc)
        .args(["-Wall", "-Wextra", "-O2", "-o"])
        .arg(&out)
        .arg("driver/pam_driver.c")
        .arg("-lpam")
        .status();
    match status {
        Ok(s) if s.success() => {}
        other => {
            println!(
                "cargo::error=could not compile driver/pam_driver.c with {cc} (needs libpam0g-dev): {other:?}"
            );
        }
    }
    println!("cargo:rustc-env=PAM_DRIVER={}", out.display());
}
