//! Inbound chat: one chat-neutral command grammar ([`grammar`]), one set of views
//! ([`views`]), one executor ([`commands`]), and one adapter per platform that verifies,
//! parses and renders (Slack, Discord).

pub mod commands;
pub mod discord;
pub mod grammar;
pub mod replay;
pub mod slack;
pub mod views;
