//! In-transit encryption for cache nodes, without touching the engines.
//!
//! - [`Authority`]: a local certificate authority kept in a directory (`ca.pem`, `ca-key.pem`),
//!   which signs leaf certificates for the addresses the API reports and hands out rustls server
//!   configurations (ring provider, no process-wide default needed).
//! - [`TlsFront`]: accepts on a node's public endpoint, terminates TLS (or, in
//!   [`Mode::Preferred`], lets plaintext through) and forwards the stream to the engine listening
//!   on a private address.

mod ca;
mod front;

pub use ca::{Authority, CA_CERT_FILE, CA_COMMON_NAME, CA_KEY_FILE};
pub use front::{Mode, TlsFront, COPY_BUFFER, HANDSHAKE_TIMEOUT};

/// Re-exported so callers name the same rustls version.
pub use rustls;

/// Errors of the certificate authority.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {reason}", path.display())]
    BadFile {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("invalid certificate name {0:?}: not an IP address or DNS name")]
    InvalidName(String),
    #[error("a certificate needs at least one name")]
    NoNames,
}
