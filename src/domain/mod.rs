//! Pure types and rules of incident response.
//!
//! Nothing in here does I/O, awaits, or knows about redb, axum or chat platforms, so every
//! rule can be unit-tested exhaustively and reused by every adapter (REST, chat, alerts,
//! playbooks) through `app`.

pub mod actor;
pub mod alert;
pub mod approval;
pub mod audit;
pub mod clock;
pub mod escalation;
pub mod event;
pub mod heartbeat;
pub mod identity;
pub mod incident;
pub mod integration;
pub mod matcher;
pub mod notification;
pub mod paging;
pub mod permission;
pub mod playbook;
pub mod priority;
pub mod problem;
pub mod reference;
pub mod schedule;
pub mod service;
pub mod silence;
pub mod text;
pub mod timeline;
pub mod transition;
