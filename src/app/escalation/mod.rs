//! Escalation: the policies that say who is paged while an incident goes unanswered, and
//! the per-incident runs that page them on time. The step math is in
//! `domain::escalation`; the worker that pages due levels is `engine::escalation`.

pub mod policies;
pub mod runs;
