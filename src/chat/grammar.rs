//! The chat-neutral command grammar: `/incident ...` and `/problem ...` as typed in Slack
//! or Discord, parsed into [`Command`]s. Pure: no I/O, exhaustively tested.
//!
//! Ids accept `42`, `INC-42` or `#42` (`PRB-7` for problems). In an incident's own thread
//! or channel the incident id may be left out. A mistake gets a message that says what was
//! wrong and shows the usage.

use crate::domain::incident::parse_incident_ref;
use crate::domain::priority::Level;
use crate::domain::problem::parse_problem_ref;

/// Who a command names: a chat user (`<@U123>` in Slack, `<@123>` in Discord) or a
/// platform username.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    /// A chat user id.
    Chat(String),
    /// A platform username.
    Username(String),
}

/// What `list` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFilter {
    /// Open incidents.
    Open,
    /// Open incidents assigned to the caller.
    Mine,
    /// Open incidents of one priority.
    Priority(crate::domain::priority::Priority),
}

/// A parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Open an incident.
    New {
        /// Title.
        title: String,
        /// Impact (default high).
        impact: Level,
        /// Urgency (default high).
        urgency: Level,
        /// Service name.
        service: Option<String>,
        /// Details (from a form; the one-line command has none).
        description: Option<String>,
    },
    /// Acknowledge, with an optional note.
    Ack {
        /// Incident.
        id: u64,
        /// Why, or what is being done.
        note: Option<String>,
        /// Whether a resolved incident may be reopened by it: yes when typed (the person
        /// named it), no from a button (a card that was not updated yet, a page in a DM:
        /// pressing a stale Acknowledge must not reopen what is over).
        reopens: bool,
    },
    /// Resolve, with an optional note.
    Resolve {
        /// Incident.
        id: u64,
        /// Why.
        note: Option<String>,
    },
    /// Assign to someone.
    Assign {
        /// Incident.
        id: u64,
        /// Whom.
        user: UserRef,
    },
    /// Assign to the caller.
    Take {
        /// Incident.
        id: u64,
    },
    /// Show one incident.
    Status {
        /// Incident.
        id: u64,
    },
    /// List incidents.
    List {
        /// Which.
        filter: ListFilter,
    },
    /// Comment.
    Comment {
        /// Incident.
        id: u64,
        /// Text.
        text: String,
    },
    /// Escalate.
    Escalate {
        /// Incident.
        id: u64,
    },
    /// Merge incidents into one.
    Merge {
        /// The incident that stays.
        target: u64,
        /// The incidents that go into it.
        sources: Vec<u64>,
    },
    /// Snooze an acknowledged incident: page again after `minutes`.
    Snooze {
        /// Incident.
        id: u64,
        /// For how long.
        minutes: u32,
    },
    /// Who is on call.
    Oncall {
        /// Service name.
        service: Option<String>,
    },
    /// Show the usage.
    Help,
    /// Record a problem.
    ProblemNew {
        /// Title.
        title: String,
    },
    /// Link an incident to a problem.
    ProblemLink {
        /// Problem.
        problem: u64,
        /// Incident.
        incident: u64,
    },
    /// Record a root cause.
    ProblemRca {
        /// Problem.
        problem: u64,
        /// The root cause.
        text: String,
    },
    /// Approve at the request's current level.
    Approve {
        /// Approval request.
        id: u64,
        /// Why.
        comment: Option<String>,
    },
    /// Reject.
    Reject {
        /// Approval request.
        id: u64,
        /// Why.
        reason: Option<String>,
    },
    /// The requests waiting for the caller's decision.
    ApprovalsWaiting,
    /// Show the `/approve` usage.
    ApproveHelp,
}

impl Command {
    /// Whether the command changes anything (an unmapped chat user may only read).
    pub fn mutates(&self) -> bool {
        !matches!(
            self,
            Command::Status { .. }
                | Command::List { .. }
                | Command::Oncall { .. }
                | Command::Help
                | Command::ApprovalsWaiting
                | Command::ApproveHelp
        )
    }
}

/// A mistake, with the usage to show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct UsageError {
    /// What was wrong.
    pub message: String,
    /// How to write it.
    pub usage: &'static str,
}

/// The usage of every `/incident` subcommand.
pub const INCIDENT_USAGE: &str = "\
/incident new <title> [impact=high|medium|low] [urgency=high|medium|low] [service=<name>]
/incident ack [id] [note]
/incident resolve [id] [note]
/incident assign <id> <@user>
/incident take [id]
/incident status [id]
/incident list [open|mine|p1..p5]
/incident comment [id] <text>
/incident escalate [id]
/incident snooze [id] <30m|2h|1d>
/incident merge <id> [id...] into <id>
/incident oncall [service]
/incident help
Ids: 42, INC-42 or #42; in an incident's thread the id may be left out, and before a
note or comment there a bare number is text (write INC-42 or #42 for another incident).";

/// The usage of every `/problem` subcommand.
pub const PROBLEM_USAGE: &str = "\
/problem new <title>
/problem link <PRB-id> <INC-id>
/problem rca <PRB-id> <root cause>";

/// The usage of `/approve`.
pub const APPROVE_USAGE: &str = "\
/approve <APR-id> [comment]
/approve reject <APR-id> [reason]
/approve list
Ids: 12, APR-12 or #12.";

fn err(message: impl Into<String>, usage: &'static str) -> UsageError {
    UsageError {
        message: message.into(),
        usage,
    }
}

/// Whether `c` opens or closes a quoted run (straight or typographic double quotes, as
/// phones and Slack's editor type them).
fn is_quote(c: char) -> bool {
    matches!(c, '"' | '“' | '”')
}

/// Splits on whitespace, keeping "double quoted" runs together.
fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            c if is_quote(c) => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The text after the first `skip` words of `text` (as [`tokens`] splits them), as typed:
/// quotes and spacing kept, only the ends trimmed. Free text (a comment, a note, a reason,
/// a root cause) is the rest of the line, not its words joined again: `error "connection
/// refused"   on db-1` stays exactly that.
fn tail(text: &str, skip: usize) -> String {
    let mut seen = 0;
    let mut start = 0;
    let mut in_token = false;
    let mut has_text = false;
    let mut quoted = false;
    // A token counts (as in `tokens`) only if it holds more than quotes; the tail starts
    // at the first counting token after `skip` of them.
    for (i, c) in text.char_indices() {
        if c.is_whitespace() && !quoted {
            if in_token && has_text {
                if seen == skip {
                    return text[start..].trim().to_owned();
                }
                seen += 1;
            }
            in_token = false;
            has_text = false;
            continue;
        }
        if !in_token {
            in_token = true;
            start = i;
        }
        if is_quote(c) {
            quoted = !quoted;
        } else {
            has_text = true;
        }
    }
    if in_token && has_text && seen == skip {
        return text[start..].trim().to_owned();
    }
    String::new()
}

/// The free text that `args` (the tail of `tokens(text)`) stand for, as typed (quotes
/// around all of it dropped); `None` when there is none.
fn free_text(text: &str, args: &[String]) -> Option<String> {
    if args.is_empty() {
        return None;
    }
    let t = tail(text, tokens(text).len() - args.len());
    // Quotes around the whole text only group it: `reject APR-4 "not during the freeze"`.
    let t = match t
        .strip_prefix(is_quote)
        .and_then(|x| x.strip_suffix(is_quote))
    {
        Some(inner) if !inner.contains(is_quote) => inner.trim().to_owned(),
        _ => t,
    };
    (!t.is_empty()).then_some(t)
}

/// Parses a user reference: `<@U123>`, `<@U123|alice>`, `<@!123>`, `@alice` or `alice`.
pub fn parse_user(token: &str) -> Option<UserRef> {
    let t = token.trim();
    if let Some(inner) = t.strip_prefix("<@").and_then(|s| s.strip_suffix('>')) {
        let id = inner
            .trim_start_matches(['!', '&'])
            .split('|')
            .next()
            .unwrap_or("");
        return (!id.is_empty()).then(|| UserRef::Chat(id.to_owned()));
    }
    let name = t.strip_prefix('@').unwrap_or(t);
    crate::domain::identity::check_username(name)
        .ok()
        .map(|_| UserRef::Username(name.to_owned()))
}

/// How a command's words after the incident read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    /// Free text (a note, a comment): in an incident's thread a bare number starts it.
    Text,
    /// Anything else (a user, a length, nothing): a bare number is an incident id.
    Other,
}

/// The incident id from `args[0]`, or the context's; consumes the argument if it was one.
/// Inside an incident's thread (`context`), for a command followed by free text, only an
/// explicit `INC-42` or `#42` names another incident: a bare number there is the start of
/// the text ("resolve 2 bad nodes replaced" resolves the thread's incident), never a
/// different incident by accident.
fn incident_id(
    args: &mut Vec<String>,
    context: Option<u64>,
    after: After,
    usage: &'static str,
) -> Result<u64, UsageError> {
    let explicit = |a: &str| {
        context.is_none() || after == After::Other || !a.bytes().all(|b| b.is_ascii_digit())
    };
    if let Some(id) = args
        .first()
        .filter(|a| explicit(a))
        .and_then(|a| parse_incident_ref(a))
    {
        args.remove(0);
        return Ok(id);
    }
    match (context, args.first()) {
        (Some(id), _) => Ok(id),
        (None, Some(a)) => Err(err(
            format!("'{a}' is not an incident id (use 42, INC-42 or #42)"),
            usage,
        )),
        (None, None) => Err(err(
            "which incident? give its id (42, INC-42 or #42)",
            usage,
        )),
    }
}

/// `30m`, `2h`, `1h30m`, `1d` (also `min`, `hours`...) as minutes; a bare number is not a
/// length (it would read as an incident id). `None` for anything else, or 0, or more
/// than a `u32` of minutes.
pub fn parse_minutes(text: &str) -> Option<u32> {
    let text = text.trim().to_ascii_lowercase();
    let mut total: u64 = 0;
    let mut rest = text.as_str();
    if rest.is_empty() || rest.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let per = match &rest[..unit_len] {
            "m" | "min" | "mins" | "minute" | "minutes" => 1,
            "h" | "hr" | "hrs" | "hour" | "hours" => 60,
            "d" | "day" | "days" => 1440,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total = total.checked_add(n.checked_mul(per)?)?;
    }
    u32::try_from(total).ok().filter(|m| *m > 0)
}

fn level(key: &str, value: &str, usage: &'static str) -> Result<Level, UsageError> {
    value.parse::<Level>().map_err(|_| {
        err(
            format!("{key} must be high, medium or low (got '{value}')"),
            usage,
        )
    })
}

/// Parses the text after `/incident`. `context` is the incident of the thread or channel.
pub fn parse_incident(text: &str, context: Option<u64>) -> Result<Command, UsageError> {
    let mut args = tokens(text);
    if args.is_empty() {
        return Ok(Command::Help);
    }
    let sub = args.remove(0).to_lowercase();
    const NEW: &str =
        "/incident new <title> [impact=high|medium|low] [urgency=high|medium|low] [service=<name>]";
    match sub.as_str() {
        "help" | "?" => Ok(Command::Help),
        "new" | "open" | "create" | "declare" => {
            let (mut impact, mut urgency, mut service) = (Level::High, Level::High, None);
            let mut title = Vec::new();
            for a in args {
                match a.split_once('=') {
                    Some((k, v)) if k.eq_ignore_ascii_case("impact") => {
                        impact = level("impact", v, NEW)?
                    }
                    Some((k, v)) if k.eq_ignore_ascii_case("urgency") => {
                        urgency = level("urgency", v, NEW)?
                    }
                    Some((k, v)) if k.eq_ignore_ascii_case("service") => {
                        if v.is_empty() {
                            return Err(err("service= needs a service name", NEW));
                        }
                        service = Some(v.to_owned());
                    }
                    _ => title.push(a),
                }
            }
            if title.is_empty() {
                return Err(err("a new incident needs a title", NEW));
            }
            Ok(Command::New {
                title: title.join(" "),
                impact,
                urgency,
                service,
                description: None,
            })
        }
        "ack" | "acknowledge" => {
            const U: &str = "/incident ack [id] [note]";
            // Words after the id (as in "ack INC-1042 investigating db pool") are its note.
            let id = incident_id(&mut args, context, After::Text, U)?;
            Ok(Command::Ack {
                id,
                note: free_text(text, &args),
                reopens: true,
            })
        }
        "resolve" => {
            const U: &str = "/incident resolve [id] [note]";
            let id = incident_id(&mut args, context, After::Text, U)?;
            let note = free_text(text, &args);
            Ok(Command::Resolve { id, note })
        }
        "assign" => {
            const U: &str = "/incident assign <id> <@user>";
            let id = incident_id(&mut args, context, After::Other, U)?;
            let who = args
                .first()
                .ok_or_else(|| err("assign to whom? mention the user", U))?;
            let user = parse_user(who).ok_or_else(|| err(format!("'{who}' is not a user"), U))?;
            if args.len() > 1 {
                return Err(err("assign takes one user", U));
            }
            Ok(Command::Assign { id, user })
        }
        "take" | "mine" => {
            const U: &str = "/incident take [id]";
            let id = incident_id(&mut args, context, After::Other, U)?;
            Ok(Command::Take { id })
        }
        "status" | "show" | "info" => {
            const U: &str = "/incident status [id]";
            let id = incident_id(&mut args, context, After::Other, U)?;
            if !args.is_empty() {
                return Err(err(format!("unexpected '{}'", args.join(" ")), U));
            }
            Ok(Command::Status { id })
        }
        "list" | "ls" => {
            const U: &str = "/incident list [open|mine|p1..p5]";
            let filter = match args.first().map(|a| a.to_lowercase()) {
                None => ListFilter::Open,
                Some(a) if a == "open" => ListFilter::Open,
                Some(a) if a == "mine" => ListFilter::Mine,
                Some(a) => match a.parse() {
                    Ok(p) => ListFilter::Priority(p),
                    Err(_) => {
                        return Err(err(
                            format!("list takes open, mine or p1..p5 (got '{a}')"),
                            U,
                        ));
                    }
                },
            };
            if args.len() > 1 {
                return Err(err("list takes one filter", U));
            }
            Ok(Command::List { filter })
        }
        "comment" | "note" => {
            const U: &str = "/incident comment [id] <text>";
            let id = incident_id(&mut args, context, After::Text, U)?;
            if args.is_empty() {
                return Err(err("a comment needs text", U));
            }
            Ok(Command::Comment {
                id,
                text: free_text(text, &args).unwrap_or_default(),
            })
        }
        "escalate" => {
            const U: &str = "/incident escalate [id]";
            let id = incident_id(&mut args, context, After::Other, U)?;
            Ok(Command::Escalate { id })
        }
        "merge" => {
            const U: &str = "/incident merge <id> [id...] into <id>";
            let (sources, target) = match args.iter().position(|a| a.eq_ignore_ascii_case("into")) {
                Some(at) => {
                    let target = match &args[at + 1..] {
                        [t] => parse_incident_ref(t).ok_or_else(|| {
                            err(
                                format!("'{t}' is not an incident id (use 42, INC-42 or #42)"),
                                U,
                            )
                        })?,
                        [] => return Err(err("merge into which incident?", U)),
                        _ => return Err(err("merge into one incident", U)),
                    };
                    (&args[..at], target)
                }
                None => match context {
                    Some(id) => (&args[..], id),
                    None => {
                        return Err(err("into which incident? say 'merge 43 44 into 42'", U));
                    }
                },
            };
            if sources.is_empty() {
                return Err(err("which incidents? name them before 'into'", U));
            }
            let sources = sources
                .iter()
                .map(|a| {
                    parse_incident_ref(a).ok_or_else(|| {
                        err(
                            format!("'{a}' is not an incident id (use 42, INC-42 or #42)"),
                            U,
                        )
                    })
                })
                .collect::<Result<Vec<u64>, _>>()?;
            Ok(Command::Merge { target, sources })
        }
        "snooze" => {
            const U: &str = "/incident snooze [id] <30m|2h|1d>";
            let id = incident_id(&mut args, context, After::Other, U)?;
            let minutes = match args.as_slice() {
                [] => return Err(err("snooze for how long? say 30m, 2h or 1d", U)),
                [d] => parse_minutes(d).ok_or_else(|| {
                    err(
                        format!("'{d}' is not a length (say 30m, 2h, 1h30m or 1d)"),
                        U,
                    )
                })?,
                _ => return Err(err("snooze takes one length", U)),
            };
            Ok(Command::Snooze { id, minutes })
        }
        "oncall" | "on-call" | "who" => Ok(Command::Oncall {
            service: (!args.is_empty()).then(|| args.join(" ")),
        }),
        other => Err(err(format!("unknown subcommand '{other}'"), INCIDENT_USAGE)),
    }
}

/// Parses the text after `/problem`.
pub fn parse_problem(text: &str) -> Result<Command, UsageError> {
    let mut args = tokens(text);
    if args.is_empty() {
        return Ok(Command::Help);
    }
    let sub = args.remove(0).to_lowercase();
    match sub.as_str() {
        "help" | "?" => Ok(Command::Help),
        "new" | "create" => {
            if args.is_empty() {
                return Err(err("a new problem needs a title", "/problem new <title>"));
            }
            Ok(Command::ProblemNew {
                title: args.join(" "),
            })
        }
        "link" => {
            const U: &str = "/problem link <PRB-id> <INC-id>";
            let [p, i] = args.as_slice() else {
                return Err(err("link takes a problem and an incident", U));
            };
            let problem = parse_problem_ref(p)
                .ok_or_else(|| err(format!("'{p}' is not a problem id (use 7 or PRB-7)"), U))?;
            let incident = parse_incident_ref(i)
                .ok_or_else(|| err(format!("'{i}' is not an incident id (use 42 or INC-42)"), U))?;
            Ok(Command::ProblemLink { problem, incident })
        }
        "rca" | "root-cause" => {
            const U: &str = "/problem rca <PRB-id> <root cause>";
            let Some(p) = args.first() else {
                return Err(err("which problem?", U));
            };
            let problem = parse_problem_ref(p)
                .ok_or_else(|| err(format!("'{p}' is not a problem id (use 7 or PRB-7)"), U))?;
            if args.len() < 2 {
                return Err(err("rca needs the root cause text", U));
            }
            Ok(Command::ProblemRca {
                problem,
                text: free_text(text, &args[1..]).unwrap_or_default(),
            })
        }
        other => Err(err(format!("unknown subcommand '{other}'"), PROBLEM_USAGE)),
    }
}

/// Parses the text after `/approve`.
pub fn parse_approve(text: &str) -> Result<Command, UsageError> {
    let mut args = tokens(text);
    let Some(first) = args.first().map(|a| a.to_lowercase()) else {
        return Ok(Command::ApproveHelp);
    };
    let rest = |args: &[String]| free_text(text, args);
    let id_of = |a: &str| {
        crate::domain::approval::parse_approval_ref(a).ok_or_else(|| {
            err(
                format!("'{a}' is not an approval id (use 12 or APR-12)"),
                APPROVE_USAGE,
            )
        })
    };
    match first.as_str() {
        "help" | "?" => Ok(Command::ApproveHelp),
        "list" | "mine" | "pending" => Ok(Command::ApprovalsWaiting),
        "reject" | "deny" => {
            args.remove(0);
            let Some(a) = args.first().cloned() else {
                return Err(err("which request? give its id (APR-12)", APPROVE_USAGE));
            };
            let id = id_of(&a)?;
            Ok(Command::Reject {
                id,
                reason: rest(&args[1..]),
            })
        }
        first => {
            // `approve APR-12` (Discord's `/approval approve`) says what the bare id says.
            if matches!(first, "approve" | "yes" | "ok") && args.len() > 1 {
                args.remove(0);
            }
            let a = args.remove(0);
            let id = id_of(&a)?;
            Ok(Command::Approve {
                id,
                comment: rest(&args),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::priority::Priority;

    #[test]
    fn approve_commands() {
        assert_eq!(parse_approve(""), Ok(Command::ApproveHelp));
        assert_eq!(parse_approve("list"), Ok(Command::ApprovalsWaiting));
        assert_eq!(
            parse_approve("APR-12 looks safe"),
            Ok(Command::Approve {
                id: 12,
                comment: Some("looks safe".into())
            })
        );
        assert_eq!(
            parse_approve("#3"),
            Ok(Command::Approve {
                id: 3,
                comment: None
            })
        );
        assert_eq!(
            parse_approve("reject apr-4 \"not during the freeze\""),
            Ok(Command::Reject {
                id: 4,
                reason: Some("not during the freeze".into())
            })
        );
        assert!(parse_approve("reject").is_err());
        assert_eq!(
            parse_approve("approve APR-5 go"),
            Ok(Command::Approve {
                id: 5,
                comment: Some("go".into())
            })
        );
        assert!(parse_approve("approve").is_err());
        let e = parse_approve("INC-4").expect_err("not an approval");
        assert!(e.message.contains("not an approval id"), "{e}");
        assert!(!Command::ApprovalsWaiting.mutates());
        assert!(
            Command::Reject {
                id: 1,
                reason: None
            }
            .mutates()
        );
    }

    fn ok(text: &str) -> Command {
        parse_incident(text, None).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn bad(text: &str, context: Option<u64>) -> UsageError {
        parse_incident(text, context).expect_err(text)
    }

    #[test]
    fn new_with_options_anywhere() {
        assert_eq!(
            ok("new DB latency impact=medium urgency=LOW service=checkout-api"),
            Command::New {
                title: "DB latency".into(),
                impact: Level::Medium,
                urgency: Level::Low,
                service: Some("checkout-api".into()),
                description: None,
            }
        );
        assert_eq!(
            ok("new \"quoted title here\""),
            Command::New {
                title: "quoted title here".into(),
                impact: Level::High,
                urgency: Level::High,
                service: None,
                description: None,
            }
        );
        assert!(bad("new", None).message.contains("title"));
        assert!(bad("new x impact=huge", None).message.contains("impact"));
        assert!(bad("new x service=", None).message.contains("service"));
    }

    #[test]
    fn free_text_is_kept_as_typed() {
        assert_eq!(
            ok(r#"comment INC-1 error "connection refused"   on db-1"#),
            Command::Comment {
                id: 1,
                text: r#"error "connection refused"   on db-1"#.into()
            }
        );
        assert_eq!(
            ok(r#"comment 2 it"s_fine"#),
            Command::Comment {
                id: 2,
                text: r#"it"s_fine"#.into()
            }
        );
        assert_eq!(
            ok(r#"resolve 3 "rolled back""#),
            Command::Resolve {
                id: 3,
                note: Some("rolled back".into())
            }
        );
        assert_eq!(
            parse_problem(r#"rca PRB-2 resolv.conf "ndots:5" misconfigured"#),
            Ok(Command::ProblemRca {
                problem: 2,
                text: r#"resolv.conf "ndots:5" misconfigured"#.into()
            })
        );
        assert_eq!(
            parse_approve(r#"reject APR-4 "too risky" during peak"#),
            Ok(Command::Reject {
                id: 4,
                reason: Some(r#""too risky" during peak"#.into())
            })
        );
        assert_eq!(tail("a  b   c d ", 2), "c d");
        assert_eq!(tail(r#"a "b c" d"#, 1), r#""b c" d"#);
        assert_eq!(tail("a b", 5), "");
        assert_eq!(
            tail(r#"a "" b  c"#, 1),
            "b  c",
            "a token of quotes alone is no token"
        );
        assert_eq!(tail("a b", 1), "b");
    }

    #[test]
    fn in_a_thread_a_bare_number_is_text_not_another_incident() {
        assert_eq!(
            parse_incident("resolve 2 bad nodes replaced", Some(1)),
            Ok(Command::Resolve {
                id: 1,
                note: Some("2 bad nodes replaced".into())
            })
        );
        assert_eq!(
            parse_incident("comment 2 replicas are down", Some(1)),
            Ok(Command::Comment {
                id: 1,
                text: "2 replicas are down".into()
            })
        );
        for explicit in ["INC-2", "inc-2", "#2"] {
            assert_eq!(
                parse_incident(&format!("ack {explicit}"), Some(1)),
                Ok(Command::Ack {
                    id: 2,
                    note: None,
                    reopens: true
                })
            );
        }
        // Where no text follows, a bare number is an id, in a thread too.
        assert_eq!(
            parse_incident("take 2", Some(1)),
            Ok(Command::Take { id: 2 })
        );
        assert_eq!(
            parse_incident("escalate 2", Some(1)),
            Ok(Command::Escalate { id: 2 })
        );
        assert_eq!(
            parse_incident("snooze 2 30m", Some(1)),
            Ok(Command::Snooze { id: 2, minutes: 30 })
        );
        assert_eq!(
            parse_incident("status 2", Some(1)),
            Ok(Command::Status { id: 2 })
        );
        assert_eq!(
            ok("resolve 2 done"),
            Command::Resolve {
                id: 2,
                note: Some("done".into())
            }
        );
    }

    #[test]
    fn ids_in_every_form_and_from_context() {
        for t in [
            "ack 42",
            "ack INC-42",
            "ack inc-42",
            "ack #42",
            "acknowledge 42",
        ] {
            assert_eq!(
                ok(t),
                Command::Ack {
                    id: 42,
                    note: None,
                    reopens: true
                },
                "{t}"
            );
        }
        assert_eq!(
            parse_incident("ack", Some(7)),
            Ok(Command::Ack {
                id: 7,
                note: None,
                reopens: true
            })
        );
        assert_eq!(
            ok("ack INC-1042 investigating db pool"),
            Command::Ack {
                id: 1042,
                note: Some("investigating db pool".into()),
                reopens: true
            }
        );
        assert!(bad("ack", None).message.contains("which incident"));
        assert!(bad("ack banana", None).message.contains("banana"));
        assert_eq!(bad("ack", None).usage, "/incident ack [id] [note]");
    }

    #[test]
    fn resolve_with_note() {
        assert_eq!(
            ok("resolve 3 fixed the pool"),
            Command::Resolve {
                id: 3,
                note: Some("fixed the pool".into())
            }
        );
        assert_eq!(ok("resolve #3"), Command::Resolve { id: 3, note: None });
        assert_eq!(
            parse_incident("resolve rolled back", Some(9)),
            Ok(Command::Resolve {
                id: 9,
                note: Some("rolled back".into())
            })
        );
    }

    #[test]
    fn assign_forms() {
        assert_eq!(
            ok("assign 5 <@U05ALICE01>"),
            Command::Assign {
                id: 5,
                user: UserRef::Chat("U05ALICE01".into())
            }
        );
        assert_eq!(
            ok("assign 5 <@U05ALICE01|alice>"),
            Command::Assign {
                id: 5,
                user: UserRef::Chat("U05ALICE01".into())
            }
        );
        assert_eq!(
            ok("assign 5 <@!1234567890>"),
            Command::Assign {
                id: 5,
                user: UserRef::Chat("1234567890".into())
            }
        );
        assert_eq!(
            ok("assign 5 @bob"),
            Command::Assign {
                id: 5,
                user: UserRef::Username("bob".into())
            }
        );
        assert!(bad("assign 5", None).message.contains("whom"));
        assert!(bad("assign 5 a b", None).message.contains("one user"));
        assert!(bad("assign 5 <@>", None).message.contains("not a user"));
    }

    #[test]
    fn lengths() {
        for (text, minutes) in [
            ("30m", Some(30)),
            ("2h", Some(120)),
            ("1h30m", Some(90)),
            ("1d", Some(1440)),
            ("2 days", None),
            ("2days", Some(2880)),
            ("90MIN", Some(90)),
            ("45", None),
            ("0m", None),
            ("", None),
            ("h", None),
            ("5x", None),
            ("-5m", None),
            ("99999999999d", None),
        ] {
            assert_eq!(parse_minutes(text), minutes, "{text}");
        }
    }

    #[test]
    fn list_status_comment_escalate_oncall_help() {
        assert_eq!(
            ok("list"),
            Command::List {
                filter: ListFilter::Open
            }
        );
        assert_eq!(
            ok("list mine"),
            Command::List {
                filter: ListFilter::Mine
            }
        );
        assert_eq!(
            ok("list P1"),
            Command::List {
                filter: ListFilter::Priority(Priority::P1)
            }
        );
        assert!(bad("list everything", None).message.contains("everything"));
        assert_eq!(ok("status 8"), Command::Status { id: 8 });
        assert!(bad("status 8 extra", None).message.contains("extra"));
        assert_eq!(
            ok("comment 8 rolled back the deploy"),
            Command::Comment {
                id: 8,
                text: "rolled back the deploy".into()
            }
        );
        assert_eq!(
            parse_incident("comment looking into it", Some(8)),
            Ok(Command::Comment {
                id: 8,
                text: "looking into it".into()
            })
        );
        assert!(bad("comment 8", None).message.contains("text"));
        assert_eq!(ok("escalate 8"), Command::Escalate { id: 8 });
        assert_eq!(ok("snooze 8 30m"), Command::Snooze { id: 8, minutes: 30 });
        assert_eq!(
            ok("merge INC-9 #10 into 8"),
            Command::Merge {
                target: 8,
                sources: vec![9, 10]
            }
        );
        assert_eq!(
            parse_incident("merge 9", Some(8)),
            Ok(Command::Merge {
                target: 8,
                sources: vec![9]
            })
        );
        assert!(bad("merge 9", None).message.contains("into which incident"));
        assert!(
            bad("merge into 8", None)
                .message
                .contains("which incidents")
        );
        assert!(bad("merge 9 into", None).message.contains("into which"));
        assert!(bad("merge 9 into 8 7", None).message.contains("into one"));
        assert!(bad("merge nine into 8", None).message.contains("'nine'"));
        assert_eq!(
            parse_incident("snooze 1h30m", Some(8)),
            Ok(Command::Snooze { id: 8, minutes: 90 })
        );
        assert!(bad("snooze 8", None).message.contains("how long"));
        assert!(
            bad("snooze 8 soon", None)
                .message
                .contains("'soon' is not a length")
        );
        assert!(bad("snooze 8 1h 2h", None).message.contains("one length"));
        assert_eq!(ok("take INC-8"), Command::Take { id: 8 });
        assert_eq!(parse_incident("take", Some(3)), Ok(Command::Take { id: 3 }));
        assert_eq!(
            ok("oncall checkout api"),
            Command::Oncall {
                service: Some("checkout api".into())
            }
        );
        assert_eq!(ok("oncall"), Command::Oncall { service: None });
        assert_eq!(ok(""), Command::Help);
        assert_eq!(ok("help"), Command::Help);
        let e = bad("explode 1", None);
        assert!(e.message.contains("explode"));
        assert_eq!(e.usage, INCIDENT_USAGE);
    }

    #[test]
    fn problems() {
        assert_eq!(
            parse_problem("new pool exhaustion"),
            Ok(Command::ProblemNew {
                title: "pool exhaustion".into()
            })
        );
        assert_eq!(
            parse_problem("link PRB-2 INC-9"),
            Ok(Command::ProblemLink {
                problem: 2,
                incident: 9
            })
        );
        assert_eq!(
            parse_problem("rca 2 pool too small"),
            Ok(Command::ProblemRca {
                problem: 2,
                text: "pool too small".into()
            })
        );
        assert!(parse_problem("link PRB-2").is_err());
        assert!(
            parse_problem("link X INC-9")
                .expect_err("bad")
                .message
                .contains("'X'")
        );
        assert!(parse_problem("rca PRB-2").is_err());
        assert!(parse_problem("new").is_err());
        assert!(parse_problem("zap").is_err());
    }

    #[test]
    fn mutating_commands() {
        assert!(ok("ack 1").mutates());
        assert!(!ok("list").mutates());
        assert!(!ok("status 1").mutates());
        assert!(!ok("help").mutates());
    }
}
