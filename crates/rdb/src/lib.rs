//! Redis RDB format.
