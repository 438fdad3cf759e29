//! pam_yubico's options (2.26/2.27: its man page and `parse_cfg` in
//! pam_yubico.c) and what pam_yubiotp does with each. `ykmap migrate`
//! translates lines with it; the tests check it against the installed
//! pam_yubico(8) and run every row through libpam; the man page's
//! MIGRATING FROM PAM_YUBICO table follows it.

use super::options::{ALWAYSOK_REFUSAL, CHALRESP_REFUSAL, MYSQL_REFUSAL};

/// What becomes of a pam_yubico option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// The same argument with the same meaning.
    Same,
    /// The same meaning under our name (`cainfo=` → `cafile=`; `url=`'s
    /// template → one `urllist=` entry); the module accepts both.
    Renamed(&'static str),
    /// A secret: the module accepts it on the line with a warning, and
    /// `ykmap migrate` moves it to this TOML key of the 0600 file.
    Secret(&'static str),
    /// Accepted with a logged warning and no effect; `ykmap migrate` drops it.
    Warned(&'static str),
    /// A configuration error (PAM_SERVICE_ERR) with this message.
    Refused(&'static str),
    /// LDAP mapping (see LDAP): this key of the TOML `[ldap]` section.
    Ldap(&'static str),
}

/// One pam_yubico option.
#[derive(Debug, Clone, Copy)]
pub struct YubicoOption {
    /// Its name, as pam_yubico spells it (without `=`).
    pub name: &'static str,
    /// `name=value` (true) or a bare flag.
    pub value: bool,
    /// What pam_yubiotp does with it.
    pub how: How,
}

const fn opt(name: &'static str, value: bool, how: How) -> YubicoOption {
    YubicoOption { name, value, how }
}

/// Every pam_yubico option, in pam_yubico.c's `parse_cfg` order, plus
/// `ldap_server`, which its man page documents (pam_yubico itself parses
/// `ldapserver`).
pub static PAM_YUBICO: &[YubicoOption] = &[
    opt("id", true, How::Secret("cloud.id")),
    opt("key", true, How::Secret("cloud.key")),
    opt("debug", false, How::Same),
    opt("alwaysok", false, How::Refused(ALWAYSOK_REFUSAL)),
    opt(
        "verbose_otp",
        false,
        How::Warned("the OTP is always read with echo off"),
    ),
    opt("try_first_pass", false, How::Same),
    opt("use_first_pass", false, How::Same),
    opt(
        "always_prompt",
        false,
        How::Warned("a user without a key is answered without a prompt"),
    ),
    opt("nullok", false, How::Same),
    opt("ldap_starttls", false, How::Ldap("starttls")),
    opt("ldap_bind_as_user", false, How::Ldap("bind_as_user")),
    opt("authfile", true, How::Same),
    opt("capath", true, How::Same),
    opt("cainfo", true, How::Renamed("cafile")),
    opt("proxy", true, How::Same),
    opt("url", true, How::Renamed("urllist")),
    opt("urllist", true, How::Same),
    opt("ldapserver", true, How::Ldap("uri")),
    opt("ldap_server", true, How::Ldap("uri")),
    opt("ldap_uri", true, How::Ldap("uri")),
    opt(
        "ldap_connection_timeout",
        true,
        How::Ldap("connection_timeout"),
    ),
    opt("ldap_bind_user", true, How::Ldap("bind_user")),
    opt("ldap_bind_password", true, How::Ldap("bind_password")),
    opt("ldap_filter", true, How::Ldap("filter")),
    opt("ldap_cacertfile", true, How::Ldap("cacertfile")),
    opt("ldap_clientcertfile", true, How::Ldap("clientcertfile")),
    opt("ldap_clientkeyfile", true, How::Ldap("clientkeyfile")),
    opt("ldapdn", true, How::Ldap("basedn")),
    opt("user_attr", true, How::Ldap("user_attr")),
    opt("yubi_attr", true, How::Ldap("yubi_attr")),
    opt("yubi_attr_prefix", true, How::Ldap("yubi_attr_prefix")),
    opt("token_id_length", true, How::Same),
    // mode=client is our mode=cloud's alias; mode=challenge-response is refused.
    opt("mode", true, How::Same),
    opt("chalresp_path", true, How::Refused(CHALRESP_REFUSAL)),
    opt("mysql_server", true, How::Refused(MYSQL_REFUSAL)),
    opt("mysql_port", true, How::Refused(MYSQL_REFUSAL)),
    opt("mysql_user", true, How::Refused(MYSQL_REFUSAL)),
    opt("mysql_password", true, How::Refused(MYSQL_REFUSAL)),
    opt("mysql_database", true, How::Refused(MYSQL_REFUSAL)),
    opt("debug_file", true, How::Same),
];

/// The row of pam_yubico option `name`.
#[must_use]
pub fn find(name: &str) -> Option<&'static YubicoOption> {
    PAM_YUBICO.iter().find(|o| o.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::options::known_args;

    #[test]
    fn every_supported_row_is_a_module_argument() {
        let known = known_args();
        for o in PAM_YUBICO {
            let spelled = if o.value {
                format!("{}=", o.name)
            } else {
                o.name.to_string()
            };
            match o.how {
                How::Same | How::Renamed(_) | How::Secret(_) | How::Warned(_) => {
                    assert!(known.contains(&spelled), "{spelled}");
                }
                How::Refused(_) => assert!(known.contains(&spelled) || o.name == "mode"),
                How::Ldap(_) => {}
            }
        }
    }
}
