//! The two ways to validate an OTP. The engine sees the cloud only through
//! [`CloudBackend`], so tests can script it; the local backend is a function
//! over the key store and counter state.

pub mod cloud;
pub mod local;

use yubiotp_core::{Counter, Token};

/// The cloud step's answer. Only the first two are definitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloudVerdict {
    /// A server answered `OK`, echoing our otp and nonce, signed (when
    /// `signed`) with our key.
    Ok {
        /// The URL that answered (no query string).
        server: String,
        /// True when the answer's signature was checked with our key.
        signed: bool,
        /// The counters the server reported (`sessioncounter`,
        /// `sessionuse`), when it sent them.
        counter: Option<Counter>,
    },
    /// A server answered `BAD_OTP` or `REPLAYED_OTP`, echoing our otp.
    Rejected {
        /// The URL that answered.
        server: String,
        /// The status token.
        status: String,
        /// The answer was signed with our key and echoed our nonce too.
        authenticated: bool,
    },
    /// No definitive answer before the deadline (each failure was logged).
    NoAnswer {
        /// A one-line summary for the attempt's log line.
        summary: String,
    },
}

/// Something that can ask validation servers about a token.
pub trait CloudBackend {
    /// Asks every configured server in parallel; returns at once on the
    /// first definitive answer, or at the deadline.
    fn verify(&self, token: &Token) -> CloudVerdict;
}
