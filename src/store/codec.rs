//! Compact binary encodings, for the records written on ingestion's hot path.
//!
//! Most records are stored as JSON: readable, forgiving, and cheap enough at the rate
//! people change things. Alerts are different: a storm writes tens of thousands a second
//! through one writer thread, and encoding them as JSON (field names, quotes, escapes,
//! RFC 3339 times) was an eighth of that thread's time. An alert is stored in the layout
//! below instead, and a stored alert that begins with `{` (written by an older version)
//! is still read as JSON.
//!
//! Alert layout, integers little-endian, strings as `len: u32` + UTF-8, times as
//! `secs: i64, nanos: u32`, each `Option` as a bit of `present`:
//!
//! ```text
//! ALERT_V1: u8  id: u64  integration_id: u64  state: u8  present: u8
//! [silenced_by: u64] [incident_id: u64]  fingerprint
//! labels: u32, each (name, value)   annotations: u32, each (name, value)
//! title  description  [severity]  [starts_at]  [ends_at]
//! first_seen_at  last_seen_at  receive_count: u64  [group_key]
//! links: u32, each (text, href)
//! ```

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::domain::alert::{Alert, AlertState, Link};

/// The first byte of an alert in the layout above (JSON starts with `{`).
const ALERT_V1: u8 = 0xA1;

const HAS_SILENCED_BY: u8 = 1;
const HAS_INCIDENT: u8 = 1 << 1;
const HAS_SEVERITY: u8 = 1 << 2;
const HAS_STARTS_AT: u8 = 1 << 3;
const HAS_ENDS_AT: u8 = 1 << 4;
const HAS_GROUP_KEY: u8 = 1 << 5;

/// Appends little-endian integers, strings and times to a buffer.
#[derive(Debug, Default)]
pub struct Out(pub Vec<u8>);

impl Out {
    /// A buffer with room for `n` bytes.
    pub fn with_capacity(n: usize) -> Self {
        Out(Vec::with_capacity(n))
    }

    /// One byte.
    pub fn u8(&mut self, v: u8) {
        self.0.push(v);
    }

    /// A little-endian `u32`.
    pub fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    /// A little-endian `u64`.
    pub fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    /// A little-endian `i64`.
    pub fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    /// A length as `u32`. Records are capped far below 4 GiB (request bodies are limited),
    /// so a larger one is a broken invariant.
    pub fn len(&mut self, n: usize) {
        self.u32(u32::try_from(n).expect("a record part below 4 GiB"));
    }

    /// Bytes as they are, with no length (a magic number).
    pub fn raw(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }

    /// Length-prefixed bytes.
    pub fn bytes(&mut self, b: &[u8]) {
        self.len(b.len());
        self.0.extend_from_slice(b);
    }

    /// A length-prefixed UTF-8 string.
    pub fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    /// A time as seconds and nanoseconds since the epoch.
    pub fn time(&mut self, t: &DateTime<Utc>) {
        self.i64(t.timestamp());
        self.u32(t.timestamp_subsec_nanos());
    }

    /// A count, then each name and value.
    fn map(&mut self, m: &BTreeMap<String, String>) {
        self.len(m.len());
        for (k, v) in m {
            self.str(k);
            self.str(v);
        }
    }
}

/// Reads what [`Out`] wrote; every read checks the bounds and says what is wrong.
#[derive(Debug)]
pub struct In<'a>(pub &'a [u8]);

impl<'a> In<'a> {
    /// The next `n` bytes.
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err(format!(
                "ends early ({} bytes left, {n} needed)",
                self.0.len()
            ));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    /// The next `N` bytes as an array.
    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let bytes = self.take(N)?;
        Ok(bytes.try_into().expect("take returned N bytes"))
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, String> {
        Ok(self.array::<1>()?[0])
    }

    /// A little-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, String> {
        self.array().map(u32::from_le_bytes)
    }

    /// A little-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, String> {
        self.array().map(u64::from_le_bytes)
    }

    /// A little-endian `i64`.
    pub fn i64(&mut self) -> Result<i64, String> {
        self.array().map(i64::from_le_bytes)
    }

    /// Length-prefixed bytes.
    pub fn bytes(&mut self) -> Result<&'a [u8], String> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    /// A length-prefixed string, which must be UTF-8.
    pub fn string(&mut self) -> Result<String, String> {
        let b = self.bytes()?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|e| format!("a string is not UTF-8: {e}"))
    }

    /// A time written by [`Out::time`].
    pub fn time(&mut self) -> Result<DateTime<Utc>, String> {
        let secs = self.i64()?;
        let nanos = self.u32()?;
        DateTime::<Utc>::from_timestamp(secs, nanos)
            .ok_or_else(|| format!("time {secs}.{nanos} is out of range"))
    }

    /// A count of items that each take at least `min_bytes`: a count the rest cannot
    /// hold is corruption, not a reason to allocate.
    pub fn count(&mut self, min_bytes: usize) -> Result<usize, String> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_bytes) > self.0.len() {
            return Err(format!("a count of {n} does not fit the rest"));
        }
        Ok(n)
    }

    /// A map written by `Out::map`.
    fn map(&mut self) -> Result<BTreeMap<String, String>, String> {
        let n = self.count(8)?;
        let mut pairs = Vec::with_capacity(n);
        for _ in 0..n {
            pairs.push((self.string()?, self.string()?));
        }
        Ok(pairs.into_iter().collect())
    }

    /// `read`'s value if `present` says the writer wrote one.
    pub fn opt<T>(
        &mut self,
        present: bool,
        read: impl FnOnce(&mut Self) -> Result<T, String>,
    ) -> Result<Option<T>, String> {
        present.then(|| read(self)).transpose()
    }

    /// Fails unless everything was read.
    pub fn end(&self) -> Result<(), String> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(format!("{} bytes after the end", self.0.len()))
        }
    }
}

/// An alert in the binary layout.
pub fn encode_alert(a: &Alert) -> Vec<u8> {
    let strings: usize = a
        .labels
        .iter()
        .chain(&a.annotations)
        .map(|(k, v)| k.len() + v.len() + 8)
        .sum::<usize>()
        + a.title.len()
        + a.description.len()
        + a.fingerprint.len();
    let mut o = Out::with_capacity(128 + strings);
    let present = [
        (a.silenced_by.is_some(), HAS_SILENCED_BY),
        (a.incident_id.is_some(), HAS_INCIDENT),
        (a.severity.is_some(), HAS_SEVERITY),
        (a.starts_at.is_some(), HAS_STARTS_AT),
        (a.ends_at.is_some(), HAS_ENDS_AT),
        (a.group_key.is_some(), HAS_GROUP_KEY),
    ]
    .iter()
    .filter(|(is, _)| *is)
    .fold(0, |bits, (_, bit)| bits | bit);
    o.u8(ALERT_V1);
    o.u64(a.id);
    o.u64(a.integration_id);
    o.u8(a.state.code());
    o.u8(present);
    a.silenced_by.inspect(|v| o.u64(*v));
    a.incident_id.inspect(|v| o.u64(*v));
    o.str(&a.fingerprint);
    o.map(&a.labels);
    o.map(&a.annotations);
    o.str(&a.title);
    o.str(&a.description);
    if let Some(s) = &a.severity {
        o.str(s);
    }
    a.starts_at.inspect(|t| o.time(t));
    a.ends_at.inspect(|t| o.time(t));
    o.time(&a.first_seen_at);
    o.time(&a.last_seen_at);
    o.u64(a.receive_count);
    if let Some(g) = &a.group_key {
        o.str(g);
    }
    o.len(a.links.len());
    for l in &a.links {
        o.str(&l.text);
        o.str(&l.href);
    }
    o.0
}

/// A stored alert: the binary layout, or JSON from an older version.
pub fn decode_alert(bytes: &[u8]) -> Result<Alert, String> {
    match bytes.first() {
        Some(&ALERT_V1) => decode_alert_v1(&bytes[1..]),
        Some(b'{') => serde_json::from_slice(bytes).map_err(|e| e.to_string()),
        Some(other) => Err(format!("unknown alert layout {other:#x}")),
        None => Err("empty".into()),
    }
}

fn decode_alert_v1(bytes: &[u8]) -> Result<Alert, String> {
    let mut r = In(bytes);
    let id = r.u64()?;
    let integration_id = r.u64()?;
    let state = match r.u8()? {
        c if c == AlertState::Firing.code() => AlertState::Firing,
        c if c == AlertState::Resolved.code() => AlertState::Resolved,
        other => return Err(format!("unknown alert state {other}")),
    };
    let present = r.u8()?;
    let has = |bit: u8| present & bit != 0;
    let silenced_by = r.opt(has(HAS_SILENCED_BY), |r| r.u64())?;
    let incident_id = r.opt(has(HAS_INCIDENT), |r| r.u64())?;
    let fingerprint = r.string()?;
    let labels = r.map()?;
    let annotations = r.map()?;
    let title = r.string()?;
    let description = r.string()?;
    let severity = r.opt(has(HAS_SEVERITY), |r| r.string())?;
    let starts_at = r.opt(has(HAS_STARTS_AT), |r| r.time())?;
    let ends_at = r.opt(has(HAS_ENDS_AT), |r| r.time())?;
    let first_seen_at = r.time()?;
    let last_seen_at = r.time()?;
    let receive_count = r.u64()?;
    let group_key = r.opt(has(HAS_GROUP_KEY), |r| r.string())?;
    let n = r.count(8)?;
    let mut links = Vec::with_capacity(n);
    for _ in 0..n {
        links.push(Link {
            text: r.string()?,
            href: r.string()?,
        });
    }
    r.end()?;
    Ok(Alert {
        id,
        integration_id,
        fingerprint,
        state,
        silenced_by,
        incident_id,
        labels,
        annotations,
        title,
        description,
        severity,
        starts_at,
        ends_at,
        first_seen_at,
        last_seen_at,
        receive_count,
        group_key,
        links,
    })
}

/// An alert with every optional part set, for tests of stored alerts.
#[cfg(test)]
pub(crate) fn sample_alert() -> Alert {
    tests::full()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64, nanos: u32) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(secs, nanos).expect("time")
    }

    pub(super) fn full() -> Alert {
        Alert {
            id: 42,
            integration_id: 7,
            fingerprint: "a1b2c3".into(),
            state: AlertState::Resolved,
            silenced_by: Some(3),
            incident_id: Some(9),
            labels: [
                ("alertname".to_string(), "Disk \"full\" ü".to_string()),
                ("severity".to_string(), "critical".to_string()),
            ]
            .into(),
            annotations: [("summary".to_string(), "line\nbreak".to_string())].into(),
            title: "Disk full".into(),
            description: String::new(),
            severity: Some("critical".into()),
            starts_at: Some(at(1_700_000_000, 482_000_000)),
            ends_at: Some(at(1_700_000_100, 0)),
            first_seen_at: at(1_700_000_001, 1),
            last_seen_at: at(1_700_000_099, 999_999_999),
            receive_count: 12,
            group_key: Some("{}:{alertname=\"Disk\"}".into()),
            links: vec![Link {
                text: "runbook".into(),
                href: "https://runbooks/disk".into(),
            }],
        }
    }

    fn bare() -> Alert {
        Alert {
            silenced_by: None,
            incident_id: None,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            severity: None,
            starts_at: None,
            ends_at: None,
            group_key: None,
            links: vec![],
            state: AlertState::Firing,
            ..full()
        }
    }

    #[test]
    fn alerts_round_trip_with_and_without_every_optional_part() {
        for a in [full(), bare()] {
            let bytes = encode_alert(&a);
            assert_eq!(bytes[0], ALERT_V1);
            assert_eq!(decode_alert(&bytes).expect("decode"), a);
        }
    }

    #[test]
    fn alerts_stored_as_json_by_older_versions_still_read() {
        let a = full();
        let json = serde_json::to_vec(&a).expect("json");
        assert_eq!(decode_alert(&json).expect("decode"), a);
    }

    #[test]
    fn a_cut_or_damaged_alert_is_an_error_not_a_panic() {
        let bytes = encode_alert(&full());
        for cut in 0..bytes.len() {
            assert!(decode_alert(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode_alert(&longer).is_err());
        let mut bad_state = bytes.clone();
        bad_state[17] = 9;
        assert!(decode_alert(&bad_state).unwrap_err().contains("state"));
        assert!(decode_alert(&[0x00]).is_err());
        // A huge count in a short record is refused before anything is allocated.
        let mut huge = vec![ALERT_V1];
        huge.extend_from_slice(&[0; 16]);
        huge.extend_from_slice(&[AlertState::Firing.code(), 0]);
        huge.extend_from_slice(&0u32.to_le_bytes());
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_alert(&huge).unwrap_err().contains("does not fit"));
    }

    #[test]
    fn the_binary_form_is_smaller_than_json() {
        let a = full();
        assert!(encode_alert(&a).len() < serde_json::to_vec(&a).expect("json").len());
    }
}
