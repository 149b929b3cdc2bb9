//! The Portcullis gateway as a library, so that its parts are testable; the
//! `portcullis-gateway` binary is a thin command line over it.

pub mod audit;
pub mod clock;
pub mod config;
pub mod init;
pub mod metrics;
pub mod password;
pub mod server;
pub mod ssh_ca;
pub mod store;
pub mod tls;
pub mod tunnel;
pub mod vault;
