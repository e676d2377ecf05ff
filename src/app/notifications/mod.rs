//! Notifications: who hears about what, through which channel, and the durable outbox that
//! delivers it.
//!
//! The transaction that publishes a domain event also plans its deliveries ([`plan`]), so
//! a change and the messages it causes commit together. The outbox worker
//! (`engine::outbox`) renders and sends them with retries; [`outbox`] holds the state
//! transitions it makes.

pub mod contacts;
pub mod outbox;
pub mod paging;
pub(crate) mod plan;
pub mod rules;
pub mod templates;
pub mod voice;
