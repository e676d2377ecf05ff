//! On-call schedules: who is on call at a given instant.
//!
//! A schedule has a time zone and layers. A layer rotates through its users, handing off
//! every `length` hours, days or weeks from its `start` (a wall-clock time in the
//! schedule's zone), optionally only inside weekly windows ("Mon-Fri 09:00-17:00").
//! Where several layers have somebody, the one listed last wins (PagerDuty's "higher
//! layers take priority"); an override (somebody covering for a while) beats every layer.
//!
//! Day and week rotations hand off at the same wall-clock time every day, across daylight
//! saving changes, as people expect ("handoff at 09:00"): a day shift is 23 or 25 hours
//! long around a change. Hour rotations are exact durations. A handoff at a wall-clock time
//! that does not exist that day (skipped by the spring change) happens at the first
//! instant after the gap; one that happens twice (autumn) happens the first time.
//!
//! Everything here is pure and takes the instant to ask about, so that it can be tested
//! exhaustively on DST boundaries.

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc,
    Weekday,
};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Most layers in a schedule.
pub const MAX_LAYERS: usize = 10;
/// Most users in one layer's rotation.
pub const MAX_USERS: usize = 100;
/// Earliest year a layer may start in.
pub const FIRST_YEAR: i32 = 1970;
/// Latest year a layer may start in, and a schedule be asked about: the rotation math
/// stays far from chrono's limits, and every shift end it answers with (a rotation may
/// run for years) stays a four-digit RFC 3339 year.
pub const LAST_YEAR: i32 = 9000;
/// Most restriction windows on a layer.
pub const MAX_RESTRICTIONS: usize = 14;

/// The unit of a rotation's shift length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RotationUnit {
    /// Exact hours.
    Hours,
    /// Calendar days: same wall-clock handoff time every day.
    Days,
    /// Calendar weeks.
    Weeks,
}

/// A window of the week in which a layer is on call, in the schedule's zone. `end` at or
/// before `start` means the window runs past midnight into the next day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Restriction {
    /// Days the window starts on, `["mon", "tue", ...]`.
    #[schema(value_type = Vec<String>)]
    pub days: Vec<Weekday>,
    /// Start, wall-clock `HH:MM[:SS]`.
    #[schema(value_type = String)]
    pub start: NaiveTime,
    /// End, wall-clock `HH:MM[:SS]`.
    #[schema(value_type = String)]
    pub end: NaiveTime,
}

/// One rotation of a schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    /// Name ("primary", "business hours").
    pub name: String,
    /// The users in rotation order.
    pub users: Vec<u64>,
    /// Unit of a shift.
    pub rotation: RotationUnit,
    /// Shift length in units (1..=365).
    pub length: u32,
    /// The first handoff: wall-clock time in the schedule's zone, `2026-12-07T09:00:00`.
    #[schema(value_type = String)]
    pub start: NaiveDateTime,
    /// Windows the layer is limited to; none means always.
    #[serde(default)]
    pub restrictions: Vec<Restriction>,
}

/// An on-call schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Schedule {
    /// Id.
    pub id: u64,
    /// Unique name.
    pub name: String,
    /// What it covers.
    #[serde(default)]
    pub description: String,
    /// IANA time zone of the layers' wall-clock times, `Europe/Berlin`.
    pub time_zone: String,
    /// The layers; later ones win where several have somebody.
    pub layers: Vec<Layer>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// Somebody covering a schedule for a while; beats every layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ScheduleOverride {
    /// Id.
    pub id: u64,
    /// The schedule.
    pub schedule_id: u64,
    /// Who is on call instead.
    pub user_id: u64,
    /// From (inclusive).
    pub start: DateTime<Utc>,
    /// Until (exclusive).
    pub end: DateTime<Utc>,
    /// Who set it up.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// Where an on-call answer comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OnCallSource {
    /// An override.
    Override {
        /// Its id.
        id: u64,
    },
    /// A layer's rotation.
    Layer {
        /// Its position in the schedule (0-based).
        index: usize,
        /// Its name.
        name: String,
    },
}

/// Who is on call at an instant, and the shift that puts them there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OnCall {
    /// The user.
    pub user_id: u64,
    /// Why.
    pub source: OnCallSource,
    /// Start of the override or rotation shift.
    pub start: DateTime<Utc>,
    /// End of the override or rotation shift (a restriction window may end it earlier).
    pub end: DateTime<Utc>,
}

/// The instant a wall-clock time in `tz` names: the first one if it happens twice, the
/// first instant after the gap if the spring change skipped it.
pub fn localize(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let mut probe = local;
    // Gaps are at most a few hours long; walk forward in minutes until time exists again.
    for _ in 0..=(24 * 60) {
        match tz.from_local_datetime(&probe) {
            LocalResult::Single(t) => return t.with_timezone(&Utc),
            LocalResult::Ambiguous(first, _) => return first.with_timezone(&Utc),
            LocalResult::None => match probe.checked_add_signed(Duration::minutes(1)) {
                Some(next) => probe = next,
                None => break,
            },
        }
    }
    // Unreachable for real zones; fall back to reading the wall time as UTC.
    Utc.from_utc_datetime(&local)
}

impl Restriction {
    /// The window that opens on local day `day` (whether or not `days` lists it), as
    /// instants: from its start to its end, the next day's when it runs past midnight.
    /// Each end is [`localize`]d, so a window edge in the repeated hour of a fall-back
    /// night is its first occurrence and one in the spring gap is right after the gap.
    fn on_day(&self, tz: Tz, day: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
        let end_day = if self.end <= self.start {
            day + Duration::days(1)
        } else {
            day
        };
        (
            localize(tz, day.and_time(self.start)),
            localize(tz, end_day.and_time(self.end)),
        )
    }

    /// Whether this window covers instant `at` in zone `tz`. Decided on the same
    /// instants the final schedule's edges are ([`Restriction::on_day`]), not on the wall
    /// clock, so that who is paged and what the schedule shows agree even in the hour a
    /// fall-back night repeats.
    pub fn covers(&self, tz: Tz, at: DateTime<Utc>) -> bool {
        let today = at.with_timezone(&tz).date_naive();
        // A window opened yesterday may still run (past midnight, or a day lengthened
        // by a fall-back night).
        [today - Duration::days(1), today].into_iter().any(|day| {
            self.days.contains(&day.weekday()) && {
                let (start, end) = self.on_day(tz, day);
                start <= at && at < end
            }
        })
    }
}

impl Layer {
    /// The instant of handoff `i` (0 is `start`).
    pub fn handoff(&self, tz: Tz, i: i64) -> DateTime<Utc> {
        let n = i * i64::from(self.length.max(1));
        match self.rotation {
            RotationUnit::Hours => localize(tz, self.start) + Duration::hours(n),
            RotationUnit::Days => localize(tz, self.start + Duration::days(n)),
            RotationUnit::Weeks => localize(tz, self.start + Duration::weeks(n)),
        }
    }

    /// The rotation shift around `at`: its index, start and end; `None` before the first
    /// handoff.
    pub fn shift_at(
        &self,
        tz: Tz,
        at: DateTime<Utc>,
    ) -> Option<(i64, DateTime<Utc>, DateTime<Utc>)> {
        if at < self.handoff(tz, 0) {
            return None;
        }
        let unit_secs: i64 = match self.rotation {
            RotationUnit::Hours => 3600,
            RotationUnit::Days => 86_400,
            RotationUnit::Weeks => 7 * 86_400,
        };
        let shift_secs = unit_secs * i64::from(self.length.max(1));
        // Estimate on wall-clock time (exact for hours up to the zone offset), then settle.
        let elapsed = match self.rotation {
            RotationUnit::Hours => (at - localize(tz, self.start)).num_seconds(),
            _ => (at.with_timezone(&tz).naive_local() - self.start).num_seconds(),
        };
        let mut i = elapsed.div_euclid(shift_secs).max(0);
        while i > 0 && self.handoff(tz, i) > at {
            i -= 1;
        }
        while self.handoff(tz, i + 1) <= at {
            i += 1;
        }
        Some((i, self.handoff(tz, i), self.handoff(tz, i + 1)))
    }

    /// Who this layer has on call at `at`, with the shift; `None` before it starts, outside
    /// its windows, or with nobody in it.
    pub fn on_call(
        &self,
        tz: Tz,
        at: DateTime<Utc>,
    ) -> Option<(u64, DateTime<Utc>, DateTime<Utc>)> {
        if self.users.is_empty() {
            return None;
        }
        if !self.restrictions.is_empty() && !self.restrictions.iter().any(|r| r.covers(tz, at)) {
            return None;
        }
        let (i, start, end) = self.shift_at(tz, at)?;
        let n = self.users.len() as i64;
        let user = self.users[i.rem_euclid(n) as usize];
        Some((user, start, end))
    }
}

impl Schedule {
    /// The schedule's zone, if its name is a known one.
    pub fn tz(&self) -> Option<Tz> {
        self.time_zone.parse().ok()
    }

    /// Who is on call at `at`: the newest override covering it, else the last layer that
    /// has somebody then. Users `available` refuses (deactivated) are skipped, so that a
    /// lower layer or the rotation covers for them.
    pub fn on_call(
        &self,
        overrides: &[ScheduleOverride],
        at: DateTime<Utc>,
        available: impl Fn(u64) -> bool,
    ) -> Option<OnCall> {
        if let Some(o) = overrides
            .iter()
            .filter(|o| {
                o.schedule_id == self.id && o.start <= at && at < o.end && available(o.user_id)
            })
            .max_by_key(|o| o.id)
        {
            return Some(OnCall {
                user_id: o.user_id,
                source: OnCallSource::Override { id: o.id },
                start: o.start,
                end: o.end,
            });
        }
        let tz = self.tz()?;
        self.layers
            .iter()
            .enumerate()
            .rev()
            .find_map(|(index, layer)| {
                let (user_id, start, end) = layer.on_call(tz, at)?;
                available(user_id).then(|| OnCall {
                    user_id,
                    source: OnCallSource::Layer {
                        index,
                        name: layer.name.clone(),
                    },
                    start,
                    end,
                })
            })
    }
}

impl Schedule {
    /// `on_call` (who holds `at`, as [`Schedule::on_call`] found) with the stretch they
    /// actually hold it for around `at`: the part of their override or rotation shift that
    /// no other override or higher layer takes, i.e. the handovers the final schedule
    /// ([`Schedule::shifts`]) shows. `overrides` must include those since `on_call.start`.
    pub fn held(
        &self,
        overrides: &[ScheduleOverride],
        on_call: OnCall,
        at: DateTime<Utc>,
        available: impl Fn(u64) -> bool,
    ) -> OnCall {
        let stretch = self
            .shifts(overrides, on_call.start, on_call.end, available)
            .into_iter()
            .find(|s| s.start <= at && at < s.end && s.user_id == on_call.user_id);
        match stretch {
            Some(s) => OnCall {
                start: s.start,
                end: s.end,
                ..on_call
            },
            None => on_call,
        }
    }
}

/// The longest window [`Schedule::shifts`] lays out.
pub const MAX_SHIFT_WINDOW_DAYS: i64 = 92;

/// A stretch of time one person is on call, as the final schedule shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Shift {
    /// The user.
    pub user_id: u64,
    /// Why (an override, or a layer's rotation).
    pub source: OnCallSource,
    /// From (cut to the window asked about).
    pub start: DateTime<Utc>,
    /// Until (cut to the window asked about).
    pub end: DateTime<Utc>,
}

impl Schedule {
    /// Who is on call over `[from, to)`, as consecutive shifts (the final schedule, as
    /// PagerDuty and GoAlert show it); stretches with nobody on call are left out.
    ///
    /// Who is on call can only change at a handoff, at a restriction window's edge or at
    /// an override's edge; between two such instants [`Schedule::on_call`] gives the
    /// answer for the whole stretch, so it is asked once per stretch.
    pub fn shifts(
        &self,
        overrides: &[ScheduleOverride],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        available: impl Fn(u64) -> bool,
    ) -> Vec<Shift> {
        let Some(tz) = self.tz() else {
            return vec![];
        };
        if to <= from {
            return vec![];
        }
        let mut edges = std::collections::BTreeSet::from([from, to]);
        let mut add = |t: DateTime<Utc>| {
            if from < t && t < to {
                edges.insert(t);
            }
        };
        for o in overrides.iter().filter(|o| o.schedule_id == self.id) {
            add(o.start);
            add(o.end);
        }
        let first_day = from.with_timezone(&tz).date_naive() - Duration::days(1);
        let last_day = to.with_timezone(&tz).date_naive() + Duration::days(1);
        for layer in &self.layers {
            let mut i = layer.shift_at(tz, from).map_or(0, |(i, _, _)| i + 1);
            loop {
                let t = layer.handoff(tz, i);
                if t >= to {
                    break;
                }
                add(t);
                i += 1;
            }
            for r in &layer.restrictions {
                let mut day = first_day;
                while day <= last_day {
                    if r.days.contains(&day.weekday()) {
                        let (start, end) = r.on_day(tz, day);
                        add(start);
                        add(end);
                    }
                    day += Duration::days(1);
                }
            }
        }
        let edges: Vec<DateTime<Utc>> = edges.into_iter().collect();
        let mut out: Vec<Shift> = Vec::new();
        for pair in edges.windows(2) {
            let (start, end) = (pair[0], pair[1]);
            let Some(o) = self.on_call(overrides, start, &available) else {
                continue;
            };
            match out.last_mut() {
                Some(last)
                    if last.end == start
                        && last.user_id == o.user_id
                        && last.source == o.source =>
                {
                    last.end = end;
                }
                _ => out.push(Shift {
                    user_id: o.user_id,
                    source: o.source,
                    start,
                    end,
                }),
            }
        }
        out
    }
}

/// Why a time with year `year` cannot be a layer's start, an override's edge or an
/// instant a schedule is asked about, if it cannot ([`FIRST_YEAR`] to [`LAST_YEAR`]).
pub fn check_year(year: i32) -> Result<(), String> {
    if (FIRST_YEAR..=LAST_YEAR).contains(&year) {
        Ok(())
    } else {
        Err(format!(
            "must be between the years {FIRST_YEAR} and {LAST_YEAR}"
        ))
    }
}

/// Why a schedule's zone and layers are not acceptable: `(field, reason)` pairs. Users are
/// checked against the store by the caller.
pub fn check(time_zone: &str, layers: &[Layer]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if time_zone.parse::<Tz>().is_err() {
        out.push((
            "time_zone".into(),
            format!("'{time_zone}' is not an IANA time zone (e.g. Europe/Berlin)"),
        ));
    }
    if layers.is_empty() {
        out.push(("layers".into(), "at least one layer is needed".into()));
    }
    if layers.len() > MAX_LAYERS {
        out.push(("layers".into(), format!("at most {MAX_LAYERS} layers")));
    }
    for (i, l) in layers.iter().enumerate() {
        if l.name.trim().is_empty() || l.name.chars().count() > 100 {
            out.push((format!("layers[{i}].name"), "1 to 100 characters".into()));
        }
        if l.users.is_empty() || l.users.len() > MAX_USERS {
            out.push((
                format!("layers[{i}].users"),
                format!("1 to {MAX_USERS} users"),
            ));
        }
        if let Err(why) = check_year(l.start.year()) {
            out.push((format!("layers[{i}].start"), why));
        }
        if !(1..=365).contains(&l.length) {
            out.push((
                format!("layers[{i}].length"),
                "must be between 1 and 365".into(),
            ));
        }
        if l.restrictions.len() > MAX_RESTRICTIONS {
            out.push((
                format!("layers[{i}].restrictions"),
                format!("at most {MAX_RESTRICTIONS} windows"),
            ));
        }
        for (j, r) in l.restrictions.iter().enumerate() {
            if r.days.is_empty() {
                out.push((
                    format!("layers[{i}].restrictions[{j}].days"),
                    "at least one day is needed".into(),
                ));
            }
            if r.start == r.end {
                out.push((
                    format!("layers[{i}].restrictions[{j}].end"),
                    "must differ from start".into(),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .and_then(|d| d.and_hms_opt(h, min, 0))
            .expect("valid date")
    }

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.from_utc_datetime(&local(y, m, d, h, min))
    }

    const BERLIN: Tz = chrono_tz::Europe::Berlin;
    const NEW_YORK: Tz = chrono_tz::America::New_York;

    fn layer(users: &[u64], rotation: RotationUnit, length: u32, start: NaiveDateTime) -> Layer {
        Layer {
            name: "primary".into(),
            users: users.to_vec(),
            rotation,
            length,
            start,
            restrictions: vec![],
        }
    }

    fn schedule(tz: &str, layers: Vec<Layer>) -> Schedule {
        Schedule {
            id: 1,
            name: "ops".into(),
            description: String::new(),
            time_zone: tz.into(),
            layers,
            created_at: utc(2026, 1, 1, 0, 0),
            updated_at: utc(2026, 1, 1, 0, 0),
        }
    }

    impl Schedule {
        fn on_call_all(&self, o: &[ScheduleOverride], at: DateTime<Utc>) -> Option<OnCall> {
            self.on_call(o, at, |_| true)
        }
    }

    /// An override of schedule 1.
    fn cover(id: u64, user_id: u64, start: DateTime<Utc>, end: DateTime<Utc>) -> ScheduleOverride {
        ScheduleOverride {
            id,
            schedule_id: 1,
            user_id,
            start,
            end,
            created_by: "admin".into(),
            created_at: start,
        }
    }

    /// `(user, start, end)` of each shift.
    fn spans(shifts: &[Shift]) -> Vec<(u64, DateTime<Utc>, DateTime<Utc>)> {
        shifts.iter().map(|s| (s.user_id, s.start, s.end)).collect()
    }

    #[test]
    fn shifts_lay_out_rotations_windows_and_overrides_across_a_dst_change() {
        // Daily handoff at 09:00 Berlin between 1 and 2; business hours (09-17, weekdays)
        // are 3's on a layer above. Berlin leaves summer time on Sunday 25 October 2026.
        let daily = layer(&[1, 2], RotationUnit::Days, 1, local(2026, 10, 23, 9, 0));
        let mut office = layer(&[3], RotationUnit::Weeks, 1, local(2026, 10, 19, 0, 0));
        office.name = "office".into();
        office.restrictions = vec![Restriction {
            days: vec![
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
            ],
            start: NaiveTime::from_hms_opt(9, 0, 0).expect("time"),
            end: NaiveTime::from_hms_opt(17, 0, 0).expect("time"),
        }];
        let s = schedule("Europe/Berlin", vec![daily, office]);
        // Friday 23 October 07:00 UTC (09:00 summer time) to Monday 26 October 12:00 UTC.
        let from = utc(2026, 10, 23, 7, 0);
        let to = utc(2026, 10, 26, 12, 0);
        let cover = ScheduleOverride {
            id: 9,
            schedule_id: 1,
            user_id: 4,
            start: utc(2026, 10, 24, 12, 0),
            end: utc(2026, 10, 24, 14, 0),
            created_by: "admin".into(),
            created_at: from,
        };
        let shifts = s.shifts(std::slice::from_ref(&cover), from, to, |_| true);
        assert_eq!(
            spans(&shifts),
            [
                (3, from, utc(2026, 10, 23, 15, 0)), // office hours, Friday
                (1, utc(2026, 10, 23, 15, 0), utc(2026, 10, 24, 7, 0)),
                (2, utc(2026, 10, 24, 7, 0), utc(2026, 10, 24, 12, 0)),
                (4, utc(2026, 10, 24, 12, 0), utc(2026, 10, 24, 14, 0)), // the override
                // 09:00 summer time Saturday to 09:00 winter time Sunday: 25 hours.
                (2, utc(2026, 10, 24, 14, 0), utc(2026, 10, 25, 8, 0)),
                (1, utc(2026, 10, 25, 8, 0), utc(2026, 10, 26, 8, 0)),
                (3, utc(2026, 10, 26, 8, 0), to), // office hours, Monday, winter time
            ]
        );
        assert_eq!(shifts[3].source, OnCallSource::Override { id: 9 });
        // Every instant agrees with on_call.
        let mut t = from;
        while t < to {
            let expected = s
                .on_call(std::slice::from_ref(&cover), t, |_| true)
                .map(|o| o.user_id);
            let shown = shifts
                .iter()
                .find(|x| x.start <= t && t < x.end)
                .map(|x| x.user_id);
            assert_eq!(shown, expected, "at {t}");
            t += Duration::minutes(30);
        }
        // Nobody available: no shifts; an empty or reversed window: none.
        assert!(s.shifts(&[], from, to, |_| false).is_empty());
        assert!(s.shifts(&[], to, from, |_| true).is_empty());
    }

    #[test]
    fn unavailable_users_are_covered_by_lower_layers() {
        let base = layer(&[1], RotationUnit::Weeks, 1, local(2026, 1, 5, 0, 0));
        let top = layer(&[2], RotationUnit::Weeks, 1, local(2026, 1, 5, 0, 0));
        let s = schedule("UTC", vec![base, top]);
        let at = utc(2026, 1, 6, 0, 0);
        assert_eq!(s.on_call(&[], at, |_| true).map(|o| o.user_id), Some(2));
        assert_eq!(s.on_call(&[], at, |u| u != 2).map(|o| o.user_id), Some(1));
        assert_eq!(s.on_call(&[], at, |_| false), None);
    }

    #[test]
    fn far_away_starts_are_refused_and_never_panic() {
        let mut l = layer(&[1], RotationUnit::Days, 1, local(2026, 1, 1, 0, 0));
        l.start = NaiveDate::MAX
            .and_hms_opt(23, 59, 0)
            .expect("chrono's last day");
        let fields: Vec<String> = check("America/New_York", std::slice::from_ref(&l))
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        assert_eq!(fields, vec!["layers[0].start"]);
        // Even unchecked, localizing the end of time does not panic.
        let _ = localize(NEW_YORK, l.start);
    }

    fn window(days: &[Weekday], start: (u32, u32), end: (u32, u32)) -> Restriction {
        Restriction {
            days: days.to_vec(),
            start: NaiveTime::from_hms_opt(start.0, start.1, 0).expect("time"),
            end: NaiveTime::from_hms_opt(end.0, end.1, 0).expect("time"),
        }
    }

    #[test]
    fn a_weekly_rotation_hands_off_in_turn_and_wraps() {
        // Monday 2026-01-05 09:00 Berlin (08:00 UTC in winter).
        let l = layer(&[1, 2, 3], RotationUnit::Weeks, 1, local(2026, 1, 5, 9, 0));
        let at = |d, h| l.on_call(BERLIN, utc(2026, 1, d, h, 0)).map(|x| x.0);
        assert_eq!(at(5, 7), None, "before the first handoff");
        assert_eq!(at(5, 8), Some(1));
        assert_eq!(
            at(12, 7),
            Some(1),
            "07:00 UTC is 08:00 Berlin, still week 1"
        );
        assert_eq!(at(12, 8), Some(2));
        assert_eq!(at(19, 8), Some(3));
        assert_eq!(at(26, 8), Some(1), "wraps around");
        let (_, start, end) = l.on_call(BERLIN, utc(2026, 1, 13, 0, 0)).expect("shift");
        assert_eq!(
            (start, end),
            (utc(2026, 1, 12, 8, 0), utc(2026, 1, 19, 8, 0))
        );
    }

    #[test]
    fn daily_handoffs_keep_the_wall_clock_time_across_dst() {
        // Berlin springs forward on 2026-03-29 (02:00 -> 03:00) and falls back on
        // 2026-10-25 (03:00 -> 02:00). Handoff at 09:00 local every day.
        let l = layer(&[1, 2], RotationUnit::Days, 1, local(2026, 3, 27, 9, 0));
        // 09:00 CET is 08:00 UTC; 09:00 CEST is 07:00 UTC.
        assert_eq!(l.handoff(BERLIN, 0), utc(2026, 3, 27, 8, 0));
        assert_eq!(l.handoff(BERLIN, 1), utc(2026, 3, 28, 8, 0));
        assert_eq!(l.handoff(BERLIN, 2), utc(2026, 3, 29, 7, 0));
        let (i, start, end) = l.shift_at(BERLIN, utc(2026, 3, 29, 0, 0)).expect("shift");
        assert_eq!(i, 1);
        assert_eq!(end - start, Duration::hours(23), "the short day");
        assert_eq!(
            l.on_call(BERLIN, utc(2026, 3, 29, 6, 59)).map(|x| x.0),
            Some(2)
        );
        assert_eq!(
            l.on_call(BERLIN, utc(2026, 3, 29, 7, 0)).map(|x| x.0),
            Some(1)
        );
        // Autumn: the long day.
        let (_, start, end) = l.shift_at(BERLIN, utc(2026, 10, 25, 12, 0)).expect("shift");
        assert_eq!(start, utc(2026, 10, 25, 8, 0));
        let (_, before_start, before_end) =
            l.shift_at(BERLIN, utc(2026, 10, 25, 0, 0)).expect("shift");
        assert_eq!(before_start, utc(2026, 10, 24, 7, 0));
        assert_eq!(before_end - before_start, Duration::hours(25));
        assert_eq!(end - start, Duration::hours(24));
    }

    #[test]
    fn hour_rotations_are_exact_durations_across_dst() {
        // 12-hour shifts from 08:00 New York on the day before the spring change
        // (2026-03-08 02:00 -> 03:00).
        let l = layer(&[1, 2], RotationUnit::Hours, 12, local(2026, 3, 7, 8, 0));
        assert_eq!(l.handoff(NEW_YORK, 0), utc(2026, 3, 7, 13, 0));
        for i in 0..6 {
            assert_eq!(
                l.handoff(NEW_YORK, i + 1) - l.handoff(NEW_YORK, i),
                Duration::hours(12)
            );
        }
        // After the change the handoffs fall at 09:00 and 21:00 local.
        let third = l.handoff(NEW_YORK, 3).with_timezone(&NEW_YORK);
        assert_eq!(third.naive_local(), local(2026, 3, 8, 21, 0));
        assert_eq!(
            l.on_call(NEW_YORK, utc(2026, 3, 9, 1, 0)).map(|x| x.0),
            Some(2)
        );
    }

    #[test]
    fn a_handoff_inside_the_spring_gap_happens_right_after_it() {
        // 02:30 does not exist in Berlin on 2026-03-29: that day's handoff is at 03:00 CEST.
        let l = layer(&[1, 2], RotationUnit::Days, 1, local(2026, 3, 28, 2, 30));
        assert_eq!(l.handoff(BERLIN, 1), utc(2026, 3, 29, 1, 0));
        assert_eq!(l.handoff(BERLIN, 2), utc(2026, 3, 30, 0, 30));
        // And twice-happening 02:30 in autumn takes the first (CEST) one.
        let l = layer(&[1, 2], RotationUnit::Days, 1, local(2026, 10, 24, 2, 30));
        assert_eq!(l.handoff(BERLIN, 1), utc(2026, 10, 25, 0, 30));
        assert_eq!(
            localize(BERLIN, local(2026, 10, 25, 2, 30)),
            utc(2026, 10, 25, 0, 30)
        );
    }

    #[test]
    fn multi_unit_shifts_and_far_future_instants() {
        let l = layer(&[1, 2, 3], RotationUnit::Days, 3, local(2026, 1, 1, 0, 0));
        let who = |at| l.on_call(chrono_tz::UTC, at).map(|x| x.0);
        assert_eq!(who(utc(2026, 1, 3, 23, 59)), Some(1));
        assert_eq!(who(utc(2026, 1, 4, 0, 0)), Some(2));
        assert_eq!(who(utc(2026, 1, 7, 0, 0)), Some(3));
        assert_eq!(who(utc(2026, 1, 10, 0, 0)), Some(1));
        // 1000 shifts later: 3000 days, shift index 1000 -> user index 1000 % 3 = 1.
        assert_eq!(who(utc(2026, 1, 1, 0, 0) + Duration::days(3000)), Some(2));
    }

    #[test]
    fn restrictions_limit_a_layer_to_its_windows_even_past_midnight() {
        let mut business = layer(&[7], RotationUnit::Weeks, 1, local(2026, 1, 5, 0, 0));
        business.restrictions = vec![window(
            &[
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
            ],
            (9, 0),
            (17, 0),
        )];
        let who = |l: &Layer, at| l.on_call(chrono_tz::UTC, at).map(|x| x.0);
        assert_eq!(
            who(&business, utc(2026, 1, 5, 9, 0)),
            Some(7),
            "Monday 09:00"
        );
        assert_eq!(
            who(&business, utc(2026, 1, 5, 17, 0)),
            None,
            "end is exclusive"
        );
        assert_eq!(who(&business, utc(2026, 1, 10, 12, 0)), None, "Saturday");
        let mut night = business.clone();
        night.restrictions = vec![window(&[Weekday::Fri], (22, 0), (6, 0))];
        assert_eq!(who(&night, utc(2026, 1, 9, 23, 0)), Some(7), "Friday night");
        assert_eq!(
            who(&night, utc(2026, 1, 10, 5, 59)),
            Some(7),
            "Saturday morning"
        );
        assert_eq!(who(&night, utc(2026, 1, 10, 6, 0)), None);
        assert_eq!(who(&night, utc(2026, 1, 8, 23, 0)), None, "Thursday night");
        // Windows are wall-clock times in the schedule's zone.
        let mut berlin = business.clone();
        berlin.restrictions = vec![window(&[Weekday::Mon], (9, 0), (10, 0))];
        assert_eq!(
            berlin.on_call(BERLIN, utc(2026, 1, 12, 8, 30)).map(|x| x.0),
            Some(7)
        );
        assert_eq!(
            berlin.on_call(BERLIN, utc(2026, 1, 12, 9, 30)).map(|x| x.0),
            None
        );
    }

    #[test]
    fn who_is_paged_and_the_final_schedule_agree_through_both_dst_changes() {
        for (zone, nights) in [
            ("Europe/Berlin", [(2027, 10, 31), (2027, 3, 28)]),
            ("America/New_York", [(2027, 11, 7), (2027, 3, 14)]),
        ] {
            let base = layer(&[2], RotationUnit::Weeks, 1, local(2027, 1, 4, 9, 0));
            let mut night = layer(&[3], RotationUnit::Days, 1, local(2027, 1, 4, 9, 0));
            night.restrictions = vec![
                window(&[Weekday::Sun], (1, 30), (2, 30)),
                window(&[Weekday::Sat], (23, 0), (2, 15)),
                window(&[Weekday::Sun], (2, 40), (3, 10)),
            ];
            let s = schedule(zone, vec![base, night]);
            for (y, m, d) in nights {
                let from = utc(y, m, d, 0, 0) - Duration::hours(12);
                let to = from + Duration::hours(36);
                let shifts = s.shifts(&[], from, to, |_| true);
                let mut at = from;
                while at < to {
                    let shown = shifts
                        .iter()
                        .find(|x| x.start <= at && at < x.end)
                        .map(|x| x.user_id);
                    let paged = s.on_call_all(&[], at).map(|o| o.user_id);
                    assert_eq!(paged, shown, "{zone} at {at}");
                    at += Duration::minutes(5);
                }
            }
        }
        // Berlin's fall-back night: 01:30-02:30 ends at the first 02:30 (00:30Z), so the
        // repeated 02:00-02:30 (01:00-01:30Z) is the base layer's again.
        let base = layer(&[2], RotationUnit::Weeks, 1, local(2027, 1, 4, 9, 0));
        let mut night = layer(&[3], RotationUnit::Weeks, 1, local(2027, 1, 4, 9, 0));
        night.restrictions = vec![window(&[Weekday::Sun], (1, 30), (2, 30))];
        let s = schedule("Europe/Berlin", vec![base, night]);
        let who = |h, min| s.on_call_all(&[], utc(2027, 10, 30 + u32::from(h < 12), h, min));
        assert_eq!(who(23, 30).map(|o| o.user_id), Some(3));
        assert_eq!(who(0, 29).map(|o| o.user_id), Some(3));
        assert_eq!(who(0, 30).map(|o| o.user_id), Some(2));
        assert_eq!(who(1, 15).map(|o| o.user_id), Some(2));
    }

    #[test]
    fn later_layers_win_and_overrides_beat_every_layer() {
        let base = layer(&[1, 2], RotationUnit::Weeks, 1, local(2026, 1, 5, 9, 0));
        let mut day = layer(&[3], RotationUnit::Weeks, 1, local(2026, 1, 5, 0, 0));
        day.name = "business hours".into();
        day.restrictions = vec![window(&[Weekday::Mon, Weekday::Tue], (9, 0), (17, 0))];
        let mut s = schedule("UTC", vec![base, day]);
        let monday_noon = utc(2026, 1, 5, 12, 0);
        let monday_night = utc(2026, 1, 5, 20, 0);
        let on = s.on_call_all(&[], monday_noon).expect("on call");
        assert_eq!(on.user_id, 3);
        assert_eq!(
            on.source,
            OnCallSource::Layer {
                index: 1,
                name: "business hours".into()
            }
        );
        assert_eq!(s.on_call_all(&[], monday_night).map(|o| o.user_id), Some(1));
        let overrides = vec![
            cover(1, 9, utc(2026, 1, 5, 0, 0), utc(2026, 1, 6, 0, 0)),
            cover(2, 8, utc(2026, 1, 5, 19, 0), utc(2026, 1, 5, 21, 0)),
        ];
        assert_eq!(
            s.on_call_all(&overrides, monday_noon).map(|o| o.user_id),
            Some(9)
        );
        let night = s.on_call_all(&overrides, monday_night).expect("override");
        assert_eq!(
            (night.user_id, night.source),
            (8, OnCallSource::Override { id: 2 })
        );
        assert_eq!(
            s.on_call_all(&overrides, utc(2026, 1, 6, 0, 0))
                .map(|o| o.user_id),
            Some(1),
            "override end is exclusive"
        );
        // Another schedule's overrides do not apply; before every layer, nobody.
        let mut other = overrides.clone();
        other[0].schedule_id = 2;
        assert_eq!(
            s.on_call_all(&other[..1], monday_night).map(|o| o.user_id),
            Some(1)
        );
        assert_eq!(s.on_call_all(&[], utc(2026, 1, 1, 0, 0)), None);
        s.time_zone = "Mars/Olympus".into();
        assert_eq!(
            s.on_call_all(&[], monday_noon),
            None,
            "an unknown zone has nobody"
        );
    }

    /// The answer for an instant names the stretch its person really holds: not the raw
    /// rotation shift, which overrides cut (alice's day starts at 07:00, but carol's
    /// override holds it until 09:00, with dave's inside it from 06:00 to 08:00).
    #[test]
    fn who_is_on_call_is_given_with_the_handovers_people_see() {
        let s = schedule(
            "UTC",
            vec![layer(&[1], RotationUnit::Days, 1, local(2026, 3, 2, 7, 0))],
        );
        let overrides = vec![
            cover(1, 3, utc(2026, 3, 10, 5, 0), utc(2026, 3, 10, 9, 0)),
            cover(2, 4, utc(2026, 3, 10, 6, 0), utc(2026, 3, 10, 8, 0)),
        ];
        let held = |at: DateTime<Utc>| {
            let raw = s.on_call_all(&overrides, at).expect("somebody");
            let o = s.held(&overrides, raw, at, |_| true);
            (o.user_id, o.start, o.end)
        };
        let nine = utc(2026, 3, 10, 9, 0);
        assert_eq!(held(nine), (1, nine, utc(2026, 3, 11, 7, 0)));
        assert_eq!(
            held(utc(2026, 3, 10, 5, 30)),
            (3, utc(2026, 3, 10, 5, 0), utc(2026, 3, 10, 6, 0))
        );
        assert_eq!(
            held(utc(2026, 3, 10, 8, 30)),
            (3, utc(2026, 3, 10, 8, 0), nine)
        );
        assert_eq!(
            held(utc(2026, 3, 10, 4, 0)),
            (1, utc(2026, 3, 9, 7, 0), utc(2026, 3, 10, 5, 0))
        );
    }

    #[test]
    fn the_checks_name_each_bad_field() {
        let fields = |tz: &str, layers: Vec<Layer>| -> Vec<String> {
            check(tz, &layers).into_iter().map(|(f, _)| f).collect()
        };
        let ok = layer(&[1], RotationUnit::Days, 1, local(2026, 1, 1, 9, 0));
        assert!(fields("Europe/Berlin", vec![ok.clone()]).is_empty());
        assert_eq!(fields("Berlin", vec![ok.clone()]), vec!["time_zone"]);
        assert_eq!(fields("UTC", vec![]), vec!["layers"]);
        let mut bad = ok.clone();
        bad.users.clear();
        bad.length = 0;
        bad.name = " ".into();
        bad.restrictions = vec![window(&[], (9, 0), (9, 0))];
        assert_eq!(
            fields("UTC", vec![ok.clone(), bad]),
            vec![
                "layers[1].name",
                "layers[1].users",
                "layers[1].length",
                "layers[1].restrictions[0].days",
                "layers[1].restrictions[0].end"
            ]
        );
        assert_eq!(fields("UTC", vec![ok; MAX_LAYERS + 1]), vec!["layers"]);
    }

    #[test]
    fn layers_and_windows_read_from_json() {
        let l: Layer = serde_json::from_str(
            r#"{"name":"p","users":[1,2],"rotation":"weeks","length":1,"start":"2026-12-07T09:00:00",
                "restrictions":[{"days":["mon","Fri"],"start":"09:00","end":"17:30"}]}"#,
        )
        .expect("layer");
        assert_eq!(l.restrictions[0].days, vec![Weekday::Mon, Weekday::Fri]);
        assert_eq!(
            l.restrictions[0].end,
            NaiveTime::from_hms_opt(17, 30, 0).expect("t")
        );
        assert_eq!(l.start, local(2026, 12, 7, 9, 0));
    }
}
