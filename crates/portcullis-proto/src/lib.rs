//! Sans-IO core of Portcullis, shared by the gateway and the client.
//!
//! Everything here is a plain function over bytes and values: no sockets, no files,
//! no clock (callers pass `now`). That keeps it unit-testable and fuzzable.
//!
//! INVARIANT: this crate depends on no async runtime, TLS stack or database.

pub mod fingerprint;
pub mod names;
pub mod policy;
pub mod secret;
pub mod throttle;
pub mod token;
pub mod wire;

pub use fingerprint::CertFingerprint;
pub use names::{HostName, Tag, UserName};
pub use secret::Secret;
