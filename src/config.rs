//! Typed configuration: embedded defaults < TOML file < `INCIDENTD_*` environment.
//!
//! Every key has a default, so `incidentd serve` runs with no file at all. Unknown keys are
//! errors (a typo must not silently fall back to a default), and every error names the key
//! and the reason in one line, so start-up and `config check` can print it as is.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::domain::priority::PriorityMatrix;

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP server binds (`INCIDENTD_LISTEN`).
    pub listen: SocketAddr,
    /// Directory of the store and generated secrets (`INCIDENTD_DATA_DIR`).
    pub data_dir: PathBuf,
    /// The URL users and monitoring systems reach the daemon at, for links and integration
    /// URLs (`INCIDENTD_PUBLIC_URL`); defaults to `http://<listen>`.
    pub public_url: Option<String>,
    /// Logging.
    pub log: LogConfig,
    /// HTTP server limits.
    pub http: HttpConfig,
    /// Authentication.
    pub auth: AuthConfig,
    /// Store tuning.
    pub store: StoreConfig,
    /// Priority matrix override.
    pub priority: PriorityConfig,
    /// Notification delivery.
    pub notify: NotifyConfig,
    /// Slack chat-ops. Absent (and no `INCIDENTD_SLACK_*` environment): Slack is off.
    pub slack: Option<SlackConfig>,
    /// Discord interactions. Absent (and no `INCIDENTD_DISCORD_PUBLIC_KEY`): Discord is off.
    #[serde(default)]
    pub discord: Option<DiscordConfig>,
    /// How long the event log and the notification log are kept.
    #[serde(default)]
    pub retention: RetentionConfig,
    /// A directory of triage playbooks, one YAML file each (`INCIDENTD_PLAYBOOKS_DIR`).
    /// Absent: no playbooks.
    #[serde(default)]
    pub playbooks_dir: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            public_url: None,
            log: LogConfig::default(),
            http: HttpConfig::default(),
            auth: AuthConfig::default(),
            store: StoreConfig::default(),
            priority: PriorityConfig::default(),
            notify: NotifyConfig::default(),
            slack: None,
            discord: None,
            playbooks_dir: None,
            retention: RetentionConfig::default(),
        }
    }
}

/// Log output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter such as `info,incidentd=debug` (`INCIDENTD_LOG`).
    pub filter: String,
    /// `text` or `json` (`INCIDENTD_LOG_FORMAT`).
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            filter: "info".into(),
            format: LogFormat::Text,
        }
    }
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// HTTP server limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Largest request body on the API, in bytes.
    pub body_limit_bytes: usize,
    /// Largest request body on alert webhooks, in bytes.
    pub hook_body_limit_bytes: usize,
    /// A request that takes longer is answered 503.
    pub request_timeout_secs: u64,
    /// On SIGTERM, how long in-flight requests may take before the daemon exits anyway.
    pub shutdown_grace_secs: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            body_limit_bytes: 1024 * 1024,
            hook_body_limit_bytes: 512 * 1024,
            request_timeout_secs: 30,
            shutdown_grace_secs: 20,
        }
    }
}

/// Authentication.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// HS256 signing secret, at least 32 bytes (`INCIDENTD_JWT_SECRET`). Unset: a random one
    /// is generated and kept in `<data_dir>/jwt-secret`.
    pub jwt_secret: Option<String>,
    /// Lifetime of access tokens.
    pub access_token_ttl_secs: u64,
    /// Lifetime of refresh tokens (each use rotates it).
    pub refresh_token_ttl_secs: u64,
    /// Failed logins per username within `throttle_window_secs` before it is throttled.
    pub max_failures_per_user: u32,
    /// Failed logins per client address within the window before it is throttled.
    pub max_failures_per_address: u32,
    /// The throttling window.
    pub throttle_window_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            access_token_ttl_secs: 24 * 3600,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            max_failures_per_user: 5,
            max_failures_per_address: 20,
            throttle_window_secs: 300,
        }
    }
}

/// What is deleted once old. Incidents, problems, their timelines, alerts and the audit log
/// are kept: they are the record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Days the domain event log is kept (what notifications and playbooks read); 0 keeps
    /// it forever. At least 2, longer than the longest paging delay.
    pub events_days: u32,
    /// Days finished deliveries stay in the notification log; 0 keeps them forever.
    pub deliveries_days: u32,
    /// Days a resolved alert stays once last seen; 0 keeps them forever. Only alerts
    /// nothing needs go: see `app::alerts::prune_resolved`. Incidents keep their counts
    /// and timelines.
    pub alerts_days: u32,
    /// Seconds between two clean-ups.
    pub interval_secs: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            events_days: 30,
            deliveries_days: 30,
            alerts_days: 90,
            interval_secs: 3600,
        }
    }
}

/// Store tuning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// redb page cache, in MiB.
    pub cache_mb: usize,
    /// Writes waiting for the writer before ingestion answers 503.
    pub write_queue: usize,
    /// Most writes folded into one transaction.
    pub max_batch: usize,
    /// Alert ingestion is acknowledged once its redo log record is on disk, and redb
    /// catches up with a durable commit (a checkpoint) at least this often, in seconds.
    pub checkpoint_secs: u64,
    /// ... or whenever this many MiB of redo log have accumulated. Start-up replays what
    /// is newer than the last checkpoint, so this bounds recovery time.
    pub checkpoint_mb: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            cache_mb: 256,
            write_queue: 8192,
            max_batch: 2048,
            checkpoint_secs: 30,
            checkpoint_mb: 128,
        }
    }
}

/// Priority matrix override.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PriorityConfig {
    /// Replaces the stored matrix at start-up when set: rows impact high/medium/low,
    /// columns urgency high/medium/low, e.g. `[["P1","P2","P3"],["P2","P3","P4"],["P3","P4","P5"]]`.
    pub matrix: Option<[[crate::domain::priority::Priority; 3]; 3]>,
}

impl PriorityConfig {
    /// The configured matrix, if any.
    pub fn matrix(&self) -> Option<PriorityMatrix> {
        self.matrix.map(|cells| PriorityMatrix { cells })
    }
}

/// Notification delivery: the outbox worker and the channels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// Deliveries sent at the same time.
    pub concurrency: usize,
    /// One attempt may take this long.
    pub timeout_secs: u64,
    /// After this many failed attempts a delivery is dead.
    pub max_attempts: u32,
    /// The first retry waits about this long; each next one twice as long.
    pub retry_base_secs: u64,
    /// No retry waits longer.
    pub retry_max_secs: u64,
    /// At most one SMS and one call per number per this many seconds; what comes in
    /// between is sent as one summary.
    pub rate_limit_secs: u64,
    /// SMTP. Absent: e-mail deliveries fail as "not configured".
    pub email: Option<EmailConfig>,
    /// Twilio (or a compatible API). Absent: SMS and voice fail as "not configured".
    pub twilio: Option<TwilioConfig>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            concurrency: 16,
            timeout_secs: 10,
            max_attempts: 10,
            retry_base_secs: 5,
            retry_max_secs: 600,
            rate_limit_secs: 60,
            email: None,
            twilio: None,
        }
    }
}

/// SMTP settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// `smtp://host:port` (plain), `smtp://host:port?tls=required` (STARTTLS) or
    /// `smtps://host:port` (TLS).
    pub smtp_url: String,
    /// The From address, e.g. `incidentd <incidentd@example.com>`.
    pub from: String,
    /// SMTP user (`INCIDENTD_SMTP_USERNAME`).
    #[serde(default)]
    pub username: Option<String>,
    /// SMTP password (`INCIDENTD_SMTP_PASSWORD`); prefer the environment.
    #[serde(default)]
    pub password: Option<String>,
}

/// Twilio-compatible SMS and voice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioConfig {
    /// Account SID (`AC...`).
    pub account_sid: String,
    /// Auth token (`INCIDENTD_TWILIO_AUTH_TOKEN`); also verifies Twilio's callbacks.
    #[serde(default)]
    pub auth_token: String,
    /// The number messages and calls come from (E.164).
    pub from_number: String,
    /// The API base URL.
    #[serde(default = "twilio_base")]
    pub api_base_url: String,
}

fn twilio_base() -> String {
    "https://api.twilio.com".into()
}

/// Slack app settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// Verifies that requests come from Slack (`INCIDENTD_SLACK_SIGNING_SECRET`).
    #[serde(default)]
    pub signing_secret: String,
    /// The bot's `xoxb-` token (`INCIDENTD_SLACK_BOT_TOKEN`).
    #[serde(default)]
    pub bot_token: String,
    /// The Web API base URL.
    #[serde(default = "slack_base")]
    pub api_base_url: String,
    /// Where incident cards go when their service names no channel.
    #[serde(default)]
    pub default_channel: Option<String>,
}

fn slack_base() -> String {
    "https://slack.com/api/".into()
}

/// Discord application settings. The public key turns on the interactions endpoint; the
/// bot token lets incidentd post incident cards and direct messages and register its
/// slash commands. Either may be set without the other.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscordConfig {
    /// The application's public key, hex (`INCIDENTD_DISCORD_PUBLIC_KEY`): verifies that
    /// interactions come from Discord. Empty: no interactions endpoint.
    #[serde(default)]
    pub public_key: String,
    /// The bot's token (`INCIDENTD_DISCORD_BOT_TOKEN`). Empty: nothing is posted to Discord.
    #[serde(default)]
    pub bot_token: String,
    /// The application id (`INCIDENTD_DISCORD_APPLICATION_ID`), for
    /// `incidentd discord register-commands`.
    #[serde(default)]
    pub application_id: String,
    /// The REST API base URL.
    #[serde(default = "discord_base")]
    pub api_base_url: String,
    /// The channel id where incident cards go when their service names no Discord channel.
    #[serde(default)]
    pub default_channel: Option<String>,
}

impl Default for DiscordConfig {
    fn default() -> Self {
        Self {
            public_key: String::new(),
            bot_token: String::new(),
            application_id: String::new(),
            api_base_url: discord_base(),
            default_channel: None,
        }
    }
}

fn discord_base() -> String {
    "https://discord.com/api/v10".into()
}

/// An outside API's base URL must be http(s): tests point it at a loopback fake.
fn check_base_url(key: &str, url: &str) -> Result<(), ConfigError> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(ConfigError::new(key, "must be an http:// or https:// URL"))
    }
}

impl DiscordConfig {
    /// Why these settings cannot work, if they cannot.
    fn check(&self) -> Result<(), ConfigError> {
        if self.public_key.is_empty() && self.bot_token.is_empty() {
            return Err(ConfigError::new(
                "discord",
                "needs public_key (INCIDENTD_DISCORD_PUBLIC_KEY), bot_token \
                 (INCIDENTD_DISCORD_BOT_TOKEN) or both",
            ));
        }
        if !self.public_key.is_empty()
            && let Err(reason) = crate::chat::discord::verify::public_key(&self.public_key)
        {
            return Err(ConfigError::new("discord.public_key", reason));
        }
        if !self.application_id.is_empty()
            && !crate::domain::notification::is_discord_id(&self.application_id)
        {
            return Err(ConfigError::new(
                "discord.application_id",
                "must be a Discord id (digits)",
            ));
        }
        if let Some(c) = &self.default_channel {
            if !crate::domain::notification::is_discord_id(c) {
                return Err(ConfigError::new(
                    "discord.default_channel",
                    "must be a Discord channel id (digits)",
                ));
            }
            if self.bot_token.is_empty() {
                return Err(ConfigError::new(
                    "discord.default_channel",
                    "needs bot_token (INCIDENTD_DISCORD_BOT_TOKEN) to post there",
                ));
            }
        }
        check_base_url("discord.api_base_url", &self.api_base_url)?;
        Ok(())
    }
}

/// A configuration problem: the key and the reason, printed as one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config error: {key}: {reason}")]
pub struct ConfigError {
    /// The key (`http.body_limit_bytes`), the environment variable, or the file.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// The longest duration a setting may name: ten years.
pub const MAX_DURATION_SECS: u64 = 10 * 365 * 86_400;

/// The environment variable naming the config file.
pub const CONFIG_ENV: &str = "INCIDENTD_CONFIG";

/// The environment variable giving the first admin's password.
pub const ADMIN_PASSWORD_ENV: &str = "INCIDENTD_ADMIN_PASSWORD";

/// The environment variables that set one key each, for naming the variable when the
/// value it set is refused.
const ENV_KEYS: &[(&str, &str)] = &[
    ("INCIDENTD_DATA_DIR", "data_dir"),
    ("INCIDENTD_PLAYBOOKS_DIR", "playbooks_dir"),
    ("INCIDENTD_PUBLIC_URL", "public_url"),
    ("INCIDENTD_JWT_SECRET", "auth.jwt_secret"),
    ("INCIDENTD_SMTP_USERNAME", "notify.email.username"),
    ("INCIDENTD_SMTP_PASSWORD", "notify.email.password"),
    ("INCIDENTD_TWILIO_AUTH_TOKEN", "notify.twilio.auth_token"),
    ("INCIDENTD_SLACK_SIGNING_SECRET", "slack.signing_secret"),
    ("INCIDENTD_SLACK_BOT_TOKEN", "slack.bot_token"),
    ("INCIDENTD_DISCORD_PUBLIC_KEY", "discord.public_key"),
    ("INCIDENTD_DISCORD_BOT_TOKEN", "discord.bot_token"),
    ("INCIDENTD_DISCORD_APPLICATION_ID", "discord.application_id"),
    ("INCIDENTD_LOG", "log.filter"),
];

impl Config {
    /// Loads defaults, then `file` (or `INCIDENTD_CONFIG`) if given, then the environment as
    /// read by `env`, and validates the result.
    pub fn load(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let from_env = env(CONFIG_ENV).map(PathBuf::from);
        let path = file.map(Path::to_path_buf).or(from_env);
        let mut config = match &path {
            Some(p) => Self::from_file(p)?,
            None => Config::default(),
        };
        config.apply_env(env)?;
        config.validate().map_err(|mut e| {
            // A value set by the environment is fixed there: the error says where.
            if let Some((var, _)) = ENV_KEYS
                .iter()
                .find(|(var, key)| e.key == *key && env(var).is_some())
            {
                e.key = format!("{var} ({})", e.key);
            }
            e
        })?;
        Ok(config)
    }

    /// Parses a TOML file (no environment, no validation).
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(path.display().to_string(), e.to_string()))?;
        Self::from_toml(&text).map_err(|mut e| {
            e.key = format!("{} ({})", e.key, path.display());
            e
        })
    }

    /// Parses TOML text (no environment, no validation).
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let locate = |span: Option<std::ops::Range<usize>>| -> String {
            span.map(|s| {
                let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                format!(" at line {line}")
            })
            .unwrap_or_default()
        };
        let de = toml::Deserializer::parse(text).map_err(|e| {
            ConfigError::new(
                "TOML syntax",
                format!("{}{}", one_line(e.message()), locate(e.span())),
            )
        })?;
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let key = if path.is_empty() || path == "." {
                "config".to_owned()
            } else {
                path
            };
            ConfigError::new(
                key,
                format!("{}{}", one_line(inner.message()), locate(inner.span())),
            )
        })
    }

    fn apply_env(&mut self, env: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = env("INCIDENTD_LISTEN") {
            self.listen = v.parse().map_err(|_| {
                ConfigError::new(
                    "INCIDENTD_LISTEN",
                    format!("'{v}' is not an address like 127.0.0.1:8080"),
                )
            })?;
        }
        if let Some(v) = env("INCIDENTD_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = env("INCIDENTD_PLAYBOOKS_DIR") {
            self.playbooks_dir = Some(PathBuf::from(v));
        }
        if let Some(v) = env("INCIDENTD_PUBLIC_URL") {
            self.public_url = Some(v);
        }
        if let Some(v) = env("INCIDENTD_JWT_SECRET") {
            self.auth.jwt_secret = Some(v);
        }
        if let Some(v) = env("INCIDENTD_SMTP_USERNAME")
            && let Some(e) = self.notify.email.as_mut()
        {
            e.username = Some(v);
        }
        if let Some(v) = env("INCIDENTD_SMTP_PASSWORD")
            && let Some(e) = self.notify.email.as_mut()
        {
            e.password = Some(v);
        }
        if let Some(v) = env("INCIDENTD_TWILIO_AUTH_TOKEN")
            && let Some(t) = self.notify.twilio.as_mut()
        {
            t.auth_token = v;
        }
        let slack_secret = env("INCIDENTD_SLACK_SIGNING_SECRET");
        let slack_token = env("INCIDENTD_SLACK_BOT_TOKEN");
        if (slack_secret.is_some() || slack_token.is_some()) && self.slack.is_none() {
            self.slack = Some(SlackConfig {
                signing_secret: String::new(),
                bot_token: String::new(),
                api_base_url: slack_base(),
                default_channel: None,
            });
        }
        if let Some(s) = self.slack.as_mut() {
            if let Some(v) = slack_secret {
                s.signing_secret = v;
            }
            if let Some(v) = slack_token {
                s.bot_token = v;
            }
        }
        let discord_key = env("INCIDENTD_DISCORD_PUBLIC_KEY");
        let discord_token = env("INCIDENTD_DISCORD_BOT_TOKEN");
        let discord_app = env("INCIDENTD_DISCORD_APPLICATION_ID");
        if discord_key.is_some() || discord_token.is_some() || discord_app.is_some() {
            let d = self.discord.get_or_insert_with(DiscordConfig::default);
            if let Some(v) = discord_key {
                d.public_key = v;
            }
            if let Some(v) = discord_token {
                d.bot_token = v;
            }
            if let Some(v) = discord_app {
                d.application_id = v;
            }
        }
        if let Some(v) = env("INCIDENTD_LOG") {
            self.log.filter = v;
        }
        if let Some(v) = env("INCIDENTD_LOG_FORMAT") {
            self.log.format = match v.to_ascii_lowercase().as_str() {
                "json" => LogFormat::Json,
                "text" => LogFormat::Text,
                _ => {
                    return Err(ConfigError::new(
                        "INCIDENTD_LOG_FORMAT",
                        format!("must be 'text' or 'json' (got '{v}')"),
                    ));
                }
            };
        }
        Ok(())
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::new("data_dir", "must not be empty"));
        }
        if let Some(url) = &self.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError::new(
                "public_url",
                format!("must start with http:// or https:// (got '{url}')"),
            ));
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.filter).map_err(|e| {
            ConfigError::new(
                "log.filter",
                format!("'{}' is not a valid filter: {e}", self.log.filter),
            )
        })?;
        if self.http.body_limit_bytes < 1024 {
            return Err(ConfigError::new(
                "http.body_limit_bytes",
                "must be at least 1024",
            ));
        }
        if self.http.hook_body_limit_bytes < 1024 {
            return Err(ConfigError::new(
                "http.hook_body_limit_bytes",
                "must be at least 1024",
            ));
        }
        if self.http.request_timeout_secs == 0 {
            return Err(ConfigError::new(
                "http.request_timeout_secs",
                "must be at least 1",
            ));
        }
        if let Some(secret) = &self.auth.jwt_secret
            && secret.len() < 32
        {
            return Err(ConfigError::new(
                "auth.jwt_secret",
                "must be at least 32 bytes",
            ));
        }
        if !(60..=30 * 24 * 3600).contains(&self.auth.access_token_ttl_secs) {
            return Err(ConfigError::new(
                "auth.access_token_ttl_secs",
                "must be between 60 and 2592000 (30 days)",
            ));
        }
        if self.auth.refresh_token_ttl_secs < self.auth.access_token_ttl_secs {
            return Err(ConfigError::new(
                "auth.refresh_token_ttl_secs",
                "must not be shorter than access_token_ttl_secs",
            ));
        }
        if self.auth.max_failures_per_user == 0 || self.auth.max_failures_per_address == 0 {
            return Err(ConfigError::new(
                "auth.max_failures_per_user",
                "throttling limits must be at least 1",
            ));
        }
        if self.auth.throttle_window_secs == 0 {
            return Err(ConfigError::new(
                "auth.throttle_window_secs",
                "must be at least 1",
            ));
        }
        if self.store.write_queue == 0 {
            return Err(ConfigError::new("store.write_queue", "must be at least 1"));
        }
        if self.store.max_batch == 0 {
            return Err(ConfigError::new("store.max_batch", "must be at least 1"));
        }
        if self.store.checkpoint_secs == 0 {
            return Err(ConfigError::new(
                "store.checkpoint_secs",
                "must be at least 1",
            ));
        }
        if self.store.checkpoint_mb == 0 {
            return Err(ConfigError::new(
                "store.checkpoint_mb",
                "must be at least 1",
            ));
        }
        let n = &self.notify;
        if n.concurrency == 0 || n.concurrency > 1024 {
            return Err(ConfigError::new(
                "notify.concurrency",
                "must be between 1 and 1024",
            ));
        }
        if n.timeout_secs == 0 {
            return Err(ConfigError::new(
                "notify.timeout_secs",
                "must be at least 1",
            ));
        }
        if n.max_attempts == 0 {
            return Err(ConfigError::new(
                "notify.max_attempts",
                "must be at least 1",
            ));
        }
        if n.retry_base_secs == 0 || n.retry_max_secs < n.retry_base_secs {
            return Err(ConfigError::new(
                "notify.retry_base_secs",
                "must be at least 1 and not above retry_max_secs",
            ));
        }
        if let Some(e) = &n.email {
            if !(e.smtp_url.starts_with("smtp://") || e.smtp_url.starts_with("smtps://")) {
                return Err(ConfigError::new(
                    "notify.email.smtp_url",
                    format!(
                        "must start with smtp:// or smtps:// (got '{}')",
                        without_password(&e.smtp_url)
                    ),
                ));
            }
            if e.from.parse::<lettre::message::Mailbox>().is_err() {
                return Err(ConfigError::new(
                    "notify.email.from",
                    format!(
                        "'{}' is not an address like 'incidentd <incidentd@example.com>'",
                        e.from
                    ),
                ));
            }
        }
        if let Some(t) = &n.twilio {
            if !t.account_sid.starts_with("AC") {
                return Err(ConfigError::new(
                    "notify.twilio.account_sid",
                    "must start with AC",
                ));
            }
            if t.auth_token.is_empty() {
                return Err(ConfigError::new(
                    "notify.twilio.auth_token",
                    "is required (set INCIDENTD_TWILIO_AUTH_TOKEN)",
                ));
            }
            if crate::domain::notification::ChannelKind::Sms
                .check_address(&t.from_number)
                .is_err()
            {
                return Err(ConfigError::new(
                    "notify.twilio.from_number",
                    "must be an E.164 number such as +15017122661",
                ));
            }
            check_base_url("notify.twilio.api_base_url", &t.api_base_url)?;
        }
        if let Some(s) = &self.slack {
            if s.signing_secret.is_empty() {
                return Err(ConfigError::new(
                    "slack.signing_secret",
                    "is required (set INCIDENTD_SLACK_SIGNING_SECRET)",
                ));
            }
            if s.bot_token.is_empty() {
                return Err(ConfigError::new(
                    "slack.bot_token",
                    "is required (set INCIDENTD_SLACK_BOT_TOKEN)",
                ));
            }
            check_base_url("slack.api_base_url", &s.api_base_url)?;
        }
        if let Some(d) = &self.discord {
            d.check()?;
        }
        if self.retention.events_days == 1 {
            return Err(ConfigError::new(
                "retention.events_days",
                "must be 0 (keep forever) or at least 2: a delayed page needs its event for up to a day",
            ));
        }
        if self.retention.interval_secs == 0 {
            return Err(ConfigError::new(
                "retention.interval_secs",
                "must be at least 1",
            ));
        }
        if self.store.cache_mb == 0 {
            return Err(ConfigError::new("store.cache_mb", "must be at least 1"));
        }
        self.check_durations()
    }

    /// Every duration at most [`MAX_DURATION_SECS`]: beyond that a setting is a typo,
    /// and far beyond it no longer fits the clock's arithmetic.
    fn check_durations(&self) -> Result<(), ConfigError> {
        let days = |d: u32| u64::from(d) * 86_400;
        for (key, secs) in [
            ("http.request_timeout_secs", self.http.request_timeout_secs),
            ("http.shutdown_grace_secs", self.http.shutdown_grace_secs),
            (
                "auth.refresh_token_ttl_secs",
                self.auth.refresh_token_ttl_secs,
            ),
            ("auth.throttle_window_secs", self.auth.throttle_window_secs),
            ("retention.events_days", days(self.retention.events_days)),
            (
                "retention.deliveries_days",
                days(self.retention.deliveries_days),
            ),
            ("retention.alerts_days", days(self.retention.alerts_days)),
            ("retention.interval_secs", self.retention.interval_secs),
            ("store.checkpoint_secs", self.store.checkpoint_secs),
            ("notify.timeout_secs", self.notify.timeout_secs),
            ("notify.retry_max_secs", self.notify.retry_max_secs),
            ("notify.rate_limit_secs", self.notify.rate_limit_secs),
        ] {
            if secs > MAX_DURATION_SECS {
                return Err(ConfigError::new(
                    key,
                    format!("must be at most {MAX_DURATION_SECS} seconds (ten years)"),
                ));
            }
        }
        Ok(())
    }

    /// A copy fit to print: every secret replaced by `[redacted]` (public keys stay), the
    /// password in a URL's user info too.
    pub fn redacted(&self) -> Config {
        fn hide(s: &mut String) {
            if !s.is_empty() {
                *s = "[redacted]".into();
            }
        }
        let mut c = self.clone();
        if let Some(s) = c.auth.jwt_secret.as_mut() {
            hide(s);
        }
        if let Some(e) = c.notify.email.as_mut() {
            if let Some(p) = e.password.as_mut() {
                hide(p);
            }
            e.smtp_url = without_password(&e.smtp_url);
        }
        if let Some(t) = c.notify.twilio.as_mut() {
            hide(&mut t.auth_token);
        }
        if let Some(s) = c.slack.as_mut() {
            hide(&mut s.signing_secret);
            hide(&mut s.bot_token);
        }
        if let Some(d) = c.discord.as_mut() {
            hide(&mut d.bot_token);
        }
        c
    }

    /// Checks `INCIDENTD_ADMIN_PASSWORD` (as read by `env`) if the first start is to use it
    /// (there is no store yet): a bad one must stop `serve` before it creates and migrates
    /// a store, like every other bad setting; once the admin exists the variable is unused.
    pub fn check_first_admin_password(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        match env(ADMIN_PASSWORD_ENV) {
            Some(p) if !self.store_path().exists() => crate::domain::identity::check_password(&p)
                .map_err(|reason| ConfigError::new(ADMIN_PASSWORD_ENV, reason)),
            _ => Ok(()),
        }
    }

    /// The store file inside the data directory.
    pub fn store_path(&self) -> PathBuf {
        self.data_dir.join(crate::store::STORE_FILE)
    }

    /// The base URL for links.
    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
            .trim_end_matches('/')
            .to_owned()
    }

    /// Store options from the configuration.
    pub fn store_options(&self) -> crate::store::StoreOptions {
        crate::store::StoreOptions {
            cache_bytes: self.store.cache_mb * 1024 * 1024,
            queue_capacity: self.store.write_queue,
            max_batch: self.store.max_batch,
            checkpoint_interval: std::time::Duration::from_secs(self.store.checkpoint_secs),
            checkpoint_bytes: self.store.checkpoint_mb * 1024 * 1024,
        }
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Reads the process environment; the production `env` for [`Config::load`].
pub fn process_env(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

/// `url` with the password of its user info (`scheme://user:password@host`) replaced by
/// `[redacted]`, for printing.
pub fn without_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    match authority[..at].find(':') {
        Some(colon) => format!(
            "{}{}:[redacted]{}",
            &url[..scheme_end],
            &authority[..colon],
            &rest[at..]
        ),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_are_not_printed() {
        for (url, shown) in [
            (
                "smtp://user:pa:ss@host:25",
                "smtp://user:[redacted]@host:25",
            ),
            (
                "smtps://u:p@mail.example.com/x?y@z",
                "smtps://u:[redacted]@mail.example.com/x?y@z",
            ),
            ("smtp://user@host", "smtp://user@host"),
            ("smtp://host:25", "smtp://host:25"),
            ("smtp://host/a:b@c", "smtp://host/a:b@c"),
            ("not a url", "not a url"),
            ("smtp://a:b@c@host", "smtp://a:[redacted]@host"),
        ] {
            assert_eq!(without_password(url), shown, "{url}");
        }
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_are_valid_and_match_the_contract() {
        let c = Config::load(None, &no_env).expect("defaults");
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.store_path(), PathBuf::from("./data/incidentd.redb"));
        assert_eq!(c.http.body_limit_bytes, 1024 * 1024);
        assert_eq!(c.auth.access_token_ttl_secs, 86400);
    }

    #[test]
    fn the_example_file_is_accepted() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/incidentd.example.toml");
        let c = Config::load(Some(&path), &no_env).expect("example parses");
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let e = Config::from_toml("lissten = \"x\"").expect_err("unknown key");
        assert!(e.to_string().contains("lissten"), "{e}");
        let e = Config::from_toml("[http]\nbody_limit_bytes = \"big\"\n").expect_err("bad type");
        assert_eq!(e.key, "http.body_limit_bytes");
        assert!(e.reason.contains("line 2"), "{e}");
        let e = Config::from_toml("listen = \"nope\"").expect_err("bad addr");
        assert_eq!(e.key, "listen");
        let e = Config::from_toml("[auth\n").expect_err("syntax");
        assert_eq!(e.key, "TOML syntax");
        assert!(!e.to_string().contains('\n'));
        let mut c = Config::default();
        c.auth.jwt_secret = Some("short".into());
        assert_eq!(
            c.validate().expect_err("short secret").key,
            "auth.jwt_secret"
        );
    }

    #[test]
    fn durations_past_ten_years_are_refused_by_name() {
        for (toml, key) in [
            (
                "[auth]\nrefresh_token_ttl_secs = 9223372036854775807\n",
                "auth.refresh_token_ttl_secs",
            ),
            (
                "[notify]\nretry_max_secs = 9223372036854775807\n",
                "notify.retry_max_secs",
            ),
            (
                "[notify]\nrate_limit_secs = 315360001\n",
                "notify.rate_limit_secs",
            ),
            (
                "[retention]\ndeliveries_days = 4000\n",
                "retention.deliveries_days",
            ),
        ] {
            let e = Config::from_toml(toml)
                .and_then(|c| c.validate().map(|()| c))
                .expect_err(toml);
            assert_eq!(e.key, key, "{e}");
        }
        let mut c = Config::default();
        c.notify.rate_limit_secs = MAX_DURATION_SECS;
        c.validate().expect("ten years is allowed");
    }

    #[test]
    fn environment_wins_over_the_file() {
        let env = |k: &str| match k {
            "INCIDENTD_LISTEN" => Some("127.0.0.1:9999".to_owned()),
            "INCIDENTD_LOG_FORMAT" => Some("json".to_owned()),
            _ => None,
        };
        let c = Config::load(None, &env).expect("loads");
        assert_eq!(c.listen.port(), 9999);
        assert_eq!(c.log.format, LogFormat::Json);
        let bad = |k: &str| (k == "INCIDENTD_LOG_FORMAT").then(|| "xml".to_owned());
        assert_eq!(
            Config::load(None, &bad).expect_err("bad").key,
            "INCIDENTD_LOG_FORMAT"
        );
    }

    #[test]
    fn a_priority_matrix_can_be_configured() {
        let c = Config::from_toml(
            "[priority]\nmatrix = [[\"P1\",\"P1\",\"P2\"],[\"P2\",\"P3\",\"P4\"],[\"P3\",\"P4\",\"P5\"]]\n",
        )
        .expect("parses");
        let m = c.priority.matrix().expect("set");
        assert_eq!(
            m.priority(
                crate::domain::priority::Level::High,
                crate::domain::priority::Level::Medium
            ),
            crate::domain::priority::Priority::P1
        );
    }

    /// Validates `text` with the environment `env`.
    fn with_env(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut c = Config::from_toml(text)?;
        c.apply_env(&|k: &str| {
            env.iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| (*v).to_owned())
        })?;
        c.validate()?;
        Ok(c)
    }

    #[test]
    fn discord_needs_a_key_or_a_bot_and_ids_that_are_ids() {
        let bot = [("INCIDENTD_DISCORD_BOT_TOKEN", "t0ken")];
        let c = with_env("", &bot).expect("a bot alone posts");
        let d = c.discord.expect("on");
        assert_eq!(d.api_base_url, "https://discord.com/api/v10");
        assert!(d.public_key.is_empty());
        let e = with_env("[discord]\n", &[]).expect_err("neither");
        assert_eq!(e.key, "discord");
        let e = with_env("[discord]\ndefault_channel = \"#ops\"\n", &bot).expect_err("name");
        assert_eq!(e.key, "discord.default_channel");
        let key = hex::encode(
            ed25519_dalek::SigningKey::from_bytes(&[42u8; 32])
                .verifying_key()
                .to_bytes(),
        );
        let e = with_env(
            "[discord]\ndefault_channel = \"1100000000000000001\"\n",
            &[("INCIDENTD_DISCORD_PUBLIC_KEY", &key)],
        )
        .expect_err("a channel needs the bot");
        assert!(e.reason.contains("bot_token"), "{e}");
        let e = with_env("[discord]\napplication_id = \"app\"\n", &bot).expect_err("id");
        assert_eq!(e.key, "discord.application_id");
        let e = with_env("[discord]\napi_base_url = \"discord.com\"\n", &bot).expect_err("url");
        assert_eq!(e.key, "discord.api_base_url");
    }

    #[test]
    fn printed_configuration_hides_every_secret() {
        let c = with_env(
            "[auth]\njwt_secret = \"0123456789abcdef0123456789abcdef\"\n\
             [slack]\nsigning_secret = \"slack-signing\"\nbot_token = \"xoxb-slack\"\n\
             [notify.twilio]\naccount_sid = \"AC00000000000000000000000000000042\"\n\
             auth_token = \"twilio-token\"\nfrom_number = \"+15017122661\"\n\
             [notify.email]\nsmtp_url = \"smtp://localhost:25\"\nfrom = \"a@example.com\"\n\
             password = \"smtp-pass\"\n",
            &[("INCIDENTD_DISCORD_BOT_TOKEN", "discord-bot")],
        )
        .expect("valid");
        let shown = toml::to_string(&c.redacted()).expect("toml");
        for secret in [
            "0123456789abcdef",
            "slack-signing",
            "xoxb-slack",
            "twilio-token",
            "smtp-pass",
            "discord-bot",
        ] {
            assert!(!shown.contains(secret), "{secret} shown:\n{shown}");
        }
        assert!(shown.contains("AC00000000000000000000000000000042"));
    }
}
