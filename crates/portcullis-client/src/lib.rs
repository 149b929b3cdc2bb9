//! The client core shared by the `portcullis` CLI and the desktop app: where client
//! state lives, how a gateway's certificate is trusted, the gateway's API, and the
//! tunnel that turns "host X" into a byte stream.
//!
//! INVARIANT: nothing here prints or logs a password or a token.

pub mod api;
pub mod appkeys;
pub mod dial;
pub mod error;
pub mod gateway_auth;
pub mod home;
pub mod inventory;
pub mod known_hosts;
pub mod rdp;
pub mod secrets;
pub mod session;
pub mod ssh;
pub mod task;
pub mod terminal;
pub mod tls;
pub mod tunnel;
pub mod vault;

pub use error::ClientError;
pub use session::Client;
