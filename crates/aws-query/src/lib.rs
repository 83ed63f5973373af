//! The AWS "query" protocol as the SDKs speak it to ElastiCache (and STS):
//! form-encoded `Action=…&Version=…` requests, lists as `Name.<member>.N`, and
//! namespaced XML responses with `<{Op}Result>` and the `ErrorResponse` envelope.
//!
//! This crate knows nothing about ElastiCache resources; it only turns bytes into
//! [`Params`] and [`XmlWriter`] output into response documents.

mod params;
mod scope;
mod xml;

pub use params::{Params, QueryError};
pub use scope::CredentialScope;
pub use xml::{error_document, success_document, XmlWriter};
