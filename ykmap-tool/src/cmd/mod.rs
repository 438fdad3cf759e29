//! One module per command group; each has a `run` taking the parsed
//! arguments.

pub mod check;
pub mod key;
pub mod map;
pub mod migrate;
pub mod otp;
pub mod softkey;
pub mod ssh;
pub mod verify;
