//! End-to-end tests: each starts the real `elastilite` binary on a free port with
//! its own data directory and drives it over HTTP, with the Rust AWS SDK, and
//! over the nodes' own protocols.

mod helpers;
mod lifecycle;
mod protocol;
mod sdk;
