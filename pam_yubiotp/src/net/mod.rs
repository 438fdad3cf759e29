//! The network client every backend shares: the cloud validation servers,
//! the etcd gateway of the shared counters and LDAP. One poll(2) loop on
//! the calling thread with one deadline, rustls with fixed trust anchors,
//! `TCP_NODELAY` and one `sendmsg(MSG_NOSIGNAL)` per flight, and names
//! resolved within the deadline — nothing outlives a call (see
//! `backend/cloud/README.md` for why it is our own).
//!
//! [`http`] is the bit of HTTP/1.1 we need (httparse for the response
//! head); [`tls`] builds the rustls configuration; [`resolve`] turns host
//! names into addresses (`/etc/hosts`, then a killable helper process);
//! [`transport`] runs several exchanges at once.

pub mod http;
pub mod resolve;
pub mod tls;
pub mod transport;
