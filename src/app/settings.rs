//! Daemon-wide settings kept in the store: the priority matrix.

use super::{App, AppResult, FieldErrors, require};
use crate::domain::actor::Actor;
use crate::domain::audit;
use crate::domain::permission::Permission;
use crate::domain::priority::{Priority, PriorityMatrix};
use crate::store::access::{self, Reader};
use crate::store::migrations::PRIORITY_MATRIX_KEY;
use crate::store::tables;

/// The matrix in force (the default if none is stored).
pub fn priority_matrix(r: &impl Reader) -> Result<PriorityMatrix, crate::store::StoreError> {
    Ok(access::get_json(r, tables::META, PRIORITY_MATRIX_KEY)?.unwrap_or_default())
}

/// Reads the matrix (any authenticated actor may: it explains priorities).
pub fn get_priority_matrix(app: &App) -> AppResult<PriorityMatrix> {
    Ok(priority_matrix(&app.store.read()?)?)
}

/// A matrix as a client sends it: rows of any length, so that a wrong shape is a 422
/// naming the row rather than a JSON syntax error from a fixed-size array.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixInput {
    /// `cells[impact][urgency]`, high first: three rows of three.
    pub cells: Vec<Vec<Priority>>,
}

impl MatrixInput {
    /// The matrix, or the rows that are not three priorities long.
    pub fn into_matrix(self) -> AppResult<PriorityMatrix> {
        let mut e = FieldErrors::new();
        if self.cells.len() != 3 {
            e.add("cells", "must have 3 rows (impact high, medium, low)");
        }
        for (i, row) in self.cells.iter().enumerate() {
            if row.len() != 3 {
                e.add(
                    format!("cells[{i}]"),
                    "must have 3 priorities (urgency high, medium, low)",
                );
            }
        }
        e.into_result()?;
        let row = |r: &[Priority]| [r[0], r[1], r[2]];
        Ok(PriorityMatrix {
            cells: [
                row(&self.cells[0]),
                row(&self.cells[1]),
                row(&self.cells[2]),
            ],
        })
    }
}

/// Replaces the matrix (needs `settings:write`). Existing incidents keep their priority
/// until their impact or urgency changes.
pub async fn set_priority_matrix(
    app: &App,
    actor: &Actor,
    matrix: PriorityMatrix,
) -> AppResult<PriorityMatrix> {
    require(actor, Permission::SettingsWrite)?;
    let now = app.clock.now();
    let who = actor.reference.clone();
    app.store
        .write(move |tx| {
            let before = priority_matrix(tx)?;
            if before != matrix {
                access::put_json(tx, tables::META, PRIORITY_MATRIX_KEY, &matrix)?;
                let changes = audit::diff(
                    &serde_json::json!({"cells": before.cells}),
                    &serde_json::json!({"cells": matrix.cells}),
                );
                super::audit::record(
                    tx,
                    now,
                    &who,
                    "settings.priority_matrix",
                    ("settings", 0),
                    "replaced the priority matrix".into(),
                    changes,
                )?;
            }
            Ok(matrix.clone())
        })
        .await
}

/// The META key of the chat settings the event planner reads.
const CHAT_SETTINGS_KEY: &[u8] = b"settings/chat";

/// What the planner needs to know about chat, kept in the store so that planning (inside
/// write transactions) does not reach for the configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChatSettings {
    /// Slack can post.
    #[serde(default)]
    pub slack: bool,
    /// Where Slack cards of services without a Slack channel go.
    pub slack_default_channel: Option<String>,
    /// Discord can post (a bot token is configured).
    #[serde(default)]
    pub discord: bool,
    /// Where Discord cards of services without a Discord channel go.
    #[serde(default)]
    pub discord_default_channel: Option<String>,
}

/// The chat settings in force (`None`: no chat platform is configured).
pub fn chat_settings(r: &impl Reader) -> Result<Option<ChatSettings>, crate::store::StoreError> {
    access::get_json(r, tables::META, CHAT_SETTINGS_KEY)
}

/// Records the configured chat settings at start-up.
pub async fn apply_chat_settings(app: &App) -> AppResult<()> {
    let slack = app.config.slack.as_ref();
    let discord = app
        .config
        .discord
        .as_ref()
        .filter(|d| !d.bot_token.is_empty());
    let wanted = (slack.is_some() || discord.is_some()).then(|| ChatSettings {
        slack: slack.is_some(),
        slack_default_channel: slack.and_then(|s| s.default_channel.clone()),
        discord: discord.is_some(),
        discord_default_channel: discord.and_then(|d| d.default_channel.clone()),
    });
    if chat_settings(&app.store.read()?)? == wanted {
        return Ok(());
    }
    app.store
        .write(move |tx| {
            match &wanted {
                Some(s) => access::put_json(tx, tables::META, CHAT_SETTINGS_KEY, s)?,
                None => {
                    access::delete_raw(tx, tables::META, CHAT_SETTINGS_KEY)?;
                }
            }
            Ok::<_, crate::app::AppError>(())
        })
        .await
}
