//! incidentd: an incident-response daemon.
//!
//! Alerts arrive through webhooks (`ingest`), become ITIL incidents through the use cases in
//! `app` (which apply the rules of `domain` and persist through `store`), and people work
//! them through the REST API (`api`) and chat. Dependencies point inward: adapters -> `app`
//! -> `domain`.

pub mod admin;
pub mod api;
pub mod app;
pub mod auth;
pub mod chat;
pub mod config;
pub mod daemon;
pub mod domain;
pub mod engine;
pub mod ingest;
pub mod notify;
pub mod store;
pub mod telemetry;

pub use app::App;
pub use config::Config;
