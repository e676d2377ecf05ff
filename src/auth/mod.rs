//! Authentication: password hashes, access and refresh tokens, login throttling, secrets.
//!
//! Authorization (what a principal may do) is `domain::permission` plus the checks in `app`
//! and the `api` extractor; this module only establishes who someone is.

pub mod jwt;
pub mod password;
pub mod refresh;
pub mod secret;
pub mod throttle;
