//! Background workers. Each is a module with one loop, keeps all its state in the store,
//! and may be stopped at any moment: after a restart it picks up where the store says.

pub mod escalation;
pub mod heartbeats;
pub mod outbox;
pub mod playbooks;
pub mod retention;
