//! The redo record of ingestion: what the logging thread appends for the requests it
//! acknowledges together, and what a replay after a crash reads back.
//!
//! A record keeps each request as it came: the body the sender posted, with the
//! integration as it was and the time it arrived. Re-encoding the parsed alerts instead
//! would cost every request a serialization on the hot path, and parsing the body again
//! at replay gives the same alerts, because parsing is a pure function of the body and the
//! integration's settings. A request whose parse is not (a PagerDuty event without a
//! `dedup_key` gets a generated one) keeps its parsed batch, as JSON, instead.
//!
//! A record also says whether it is applied in one session with the record before it. The
//! logging thread decides that as it writes the record (records logged before the pending
//! operation is handed to the writer fold into one session, see [`super::ingest_queue`]),
//! and a replay must group them the same way: what a session writes depends on what it
//! holds (one timeline entry per incident and session, say), and a replay must do what
//! the live daemon did.
//!
//! Layout, integers little-endian:
//!
//! ```text
//! b"IDR2"  flags: u8 (bit 0: joins the previous record's session)
//! integrations: u32, each  len: u32, the integration as JSON
//! requests: u32, each      integration: u32 (index), secs: i64, nanos: u32,
//!                          form: u8 (0 body, 1 batch JSON), len: u32, bytes
//! ```
//!
//! (the integer, byte and time encodings of [`crate::store::codec`]).
//!
//! Records written before this layout are one JSON object (`{"integrations":..,
//! "requests":..}`, the batches re-encoded) and are still read, each its own session.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::alert::Batch;
use crate::domain::integration::{Integration, IntegrationKind, IntegrationSettings};
use crate::store::codec::{In, Out};

/// The first bytes of a record in this layout.
const MAGIC: &[u8; 4] = b"IDR2";
/// Flag: the record is applied in the session of the record before it.
const JOINS: u8 = 1;
/// Form of a request kept as the body it came with.
const FORM_BODY: u8 = 0;
/// Form of a request kept as its parsed batch (JSON).
const FORM_BATCH: u8 = 1;

/// Everything one ingestion depends on besides the store. Applying it to the store as it
/// was gives the same result: ingestion reads nothing else (the clock is in the record,
/// and the integration as it was when the request came).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct IngestRecord {
    pub now: DateTime<Utc>,
    pub integration: Arc<Integration>,
    pub batch: Batch,
}

/// What the log keeps of a request besides its integration and time.
#[derive(Debug, Clone)]
pub(crate) enum Kept {
    /// The body as received; replay parses it again.
    Body(Bytes),
    /// The parsed batch as JSON, for a parse that is not deterministic.
    Batch(Vec<u8>),
}

impl Kept {
    /// The bytes written for it.
    pub fn len(&self) -> usize {
        match self {
            Kept::Body(b) => b.len(),
            Kept::Batch(b) => b.len(),
        }
    }

    fn form_and_bytes(&self) -> (u8, &[u8]) {
        match self {
            Kept::Body(b) => (FORM_BODY, b),
            Kept::Batch(b) => (FORM_BATCH, b),
        }
    }
}

/// How a replay turns a kept body back into alerts: the source formats live in the
/// adapters, so the daemon passes their parser in (`crate::ingest::parse`).
pub type BodyParser =
    dyn Fn(IntegrationKind, &[u8], &IntegrationSettings) -> Result<Batch, String> + Send + Sync;

/// A record read back.
#[derive(Debug)]
pub(crate) struct Decoded {
    /// Applied in one session with the record before it.
    pub joins: bool,
    /// Its requests, in the order they were logged.
    pub requests: Vec<IngestRecord>,
}

/// Encodes the requests of one record; each distinct integration is written once.
pub(crate) fn encode<'a>(
    joins: bool,
    requests: impl Iterator<Item = (&'a IngestRecord, &'a Kept)> + Clone,
) -> Vec<u8> {
    let mut integrations: Vec<&Arc<Integration>> = Vec::new();
    let mut index_of = |i: &'a Arc<Integration>| -> u32 {
        let at = integrations
            .iter()
            .position(|known| Arc::ptr_eq(known, i) || **known == *i)
            .unwrap_or_else(|| {
                integrations.push(i);
                integrations.len() - 1
            });
        u32::try_from(at).expect("fewer than 2^32 integrations in a record")
    };
    let indexes: Vec<u32> = requests
        .clone()
        .map(|(r, _)| index_of(&r.integration))
        .collect();
    let body_bytes: usize = requests.clone().map(|(_, k)| k.len() + 25).sum();
    let mut out = Out::with_capacity(16 + body_bytes + integrations.len() * 512);
    out.raw(MAGIC);
    out.u8(if joins { JOINS } else { 0 });
    out.len(integrations.len());
    for i in &integrations {
        // Integrations are plain data: encoding one cannot fail.
        out.bytes(&serde_json::to_vec(&***i).unwrap_or_default());
    }
    out.len(indexes.len());
    for ((record, kept), index) in requests.zip(indexes) {
        out.u32(index);
        out.time(&record.now);
        let (form, bytes) = kept.form_and_bytes();
        out.u8(form);
        out.bytes(bytes);
    }
    out.0
}

/// Reads a record back, parsing kept bodies with `parse`.
pub(crate) fn decode(bytes: &[u8], parse: &BodyParser) -> Result<Decoded, String> {
    let Some(rest) = bytes.strip_prefix(MAGIC.as_slice()) else {
        return decode_json(bytes);
    };
    let mut r = In(rest);
    let flags = r.u8()?;
    let n = r.count(4)?;
    let mut integrations = Vec::with_capacity(n);
    for _ in 0..n {
        let json = r.bytes()?;
        let i: Integration = serde_json::from_slice(json)
            .map_err(|e| format!("an integration does not decode: {e}"))?;
        integrations.push(Arc::new(i));
    }
    let n = r.count(21)?;
    let mut requests = Vec::with_capacity(n);
    for _ in 0..n {
        let index = r.u32()? as usize;
        let integration = integrations
            .get(index)
            .cloned()
            .ok_or_else(|| format!("no integration #{index} in the record"))?;
        let now = r.time()?;
        let form = r.u8()?;
        let kept = r.bytes()?;
        let batch = match form {
            FORM_BODY => parse(integration.kind, kept, &integration.settings)
                .map_err(|e| format!("a logged body does not parse: {e}"))?,
            FORM_BATCH => serde_json::from_slice(kept)
                .map_err(|e| format!("a logged batch does not decode: {e}"))?,
            other => return Err(format!("unknown request form {other}")),
        };
        requests.push(IngestRecord {
            now,
            integration,
            batch,
        });
    }
    r.end()?;
    Ok(Decoded {
        joins: flags & JOINS != 0,
        requests,
    })
}

/// A request in a record of the JSON layout.
#[derive(Serialize, Deserialize)]
struct JsonRequest {
    now: DateTime<Utc>,
    batch: Batch,
}

/// A record of the JSON layout: `requests` are `(index into integrations, request)`.
#[derive(Deserialize)]
struct JsonRecord {
    integrations: Vec<Integration>,
    requests: Vec<(usize, JsonRequest)>,
}

/// Reads a record of the JSON layout (written before [`MAGIC`] records).
fn decode_json(bytes: &[u8]) -> Result<Decoded, String> {
    let record: JsonRecord = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let integrations: Vec<Arc<Integration>> =
        record.integrations.into_iter().map(Arc::new).collect();
    let requests = record
        .requests
        .into_iter()
        .map(|(i, r)| {
            let integration = integrations
                .get(i)
                .cloned()
                .ok_or_else(|| format!("no integration #{i} in the record"))?;
            Ok(IngestRecord {
                now: r.now,
                integration,
                batch: r.batch,
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(Decoded {
        joins: false,
        requests,
    })
}

/// An Alertmanager integration of service 1, for tests of ingestion.
#[cfg(test)]
pub(crate) fn test_integration(id: u64, name: &str) -> Arc<Integration> {
    Arc::new(Integration {
        id,
        name: name.into(),
        kind: IntegrationKind::Alertmanager,
        token_hash: "hash".into(),
        token_hint: "hint".into(),
        service_id: 1,
        escalation_policy_id: None,
        settings: IntegrationSettings::default(),
        created_by: crate::domain::actor::Actor::system().reference,
        created_at: DateTime::<Utc>::UNIX_EPOCH,
        updated_at: DateTime::<Utc>::UNIX_EPOCH,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::alert::{IncomingAction, IncomingAlert};

    use super::test_integration as integration;

    fn batch(fingerprint: &str) -> Batch {
        Batch {
            alerts: vec![IncomingAlert {
                fingerprint: fingerprint.into(),
                action: IncomingAction::Fire,
                labels: [("alertname".to_string(), fingerprint.to_string())].into(),
                annotations: Default::default(),
                title: fingerprint.into(),
                description: String::new(),
                severity: Some("critical".into()),
                starts_at: None,
                ends_at: None,
                group_key: None,
                links: vec![],
            }],
            truncated: 0,
        }
    }

    fn at(secs: i64, nanos: u32) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(secs, nanos).expect("time")
    }

    /// A stand-in for the source parsers: the body is the fingerprint.
    fn parse(kind: IntegrationKind, body: &[u8], _: &IntegrationSettings) -> Result<Batch, String> {
        assert_eq!(kind, IntegrationKind::Alertmanager);
        let fp = std::str::from_utf8(body).map_err(|e| e.to_string())?;
        if fp.is_empty() {
            return Err("empty".into());
        }
        Ok(batch(fp))
    }

    fn requests() -> Vec<(IngestRecord, Kept)> {
        let a = integration(1, "a");
        let mut changed = (*a).clone();
        changed.settings.auto_resolve = false;
        let changed = Arc::new(changed);
        let b = integration(2, "b");
        let body = |i: &Arc<Integration>, fp: &str, t| {
            (
                IngestRecord {
                    now: t,
                    integration: i.clone(),
                    batch: batch(fp),
                },
                Kept::Body(Bytes::copy_from_slice(fp.as_bytes())),
            )
        };
        let parsed = batch("generated-key");
        vec![
            body(&a, "f1", at(10, 1)),
            body(&b, "f2", at(11, 999_999_999)),
            body(&a, "f3", at(12, 0)),
            // The same integration, changed between two requests: both versions are kept.
            body(&changed, "f4", at(13, 5)),
            (
                IngestRecord {
                    now: at(14, 0),
                    integration: b.clone(),
                    batch: parsed.clone(),
                },
                Kept::Batch(serde_json::to_vec(&parsed).expect("json")),
            ),
        ]
    }

    #[test]
    fn a_record_gives_back_every_request_with_its_integration_time_and_alerts() {
        let requests = requests();
        for joins in [false, true] {
            let bytes = encode(joins, requests.iter().map(|(r, k)| (r, k)));
            let back = decode(&bytes, &parse).expect("decode");
            assert_eq!(back.joins, joins);
            let expected: Vec<IngestRecord> = requests.iter().map(|(r, _)| r.clone()).collect();
            assert_eq!(back.requests, expected);
        }
    }

    #[test]
    fn each_distinct_integration_is_written_once() {
        let requests = requests();
        let bytes = encode(false, requests.iter().map(|(r, k)| (r, k)));
        assert_eq!(&bytes[..4], MAGIC);
        assert_eq!(u32::from_le_bytes(bytes[5..9].try_into().expect("4")), 3);
    }

    #[test]
    fn a_cut_or_damaged_record_is_an_error_not_a_panic() {
        let requests = requests();
        let bytes = encode(true, requests.iter().map(|(r, k)| (r, k)));
        for cut in 0..bytes.len() {
            // Every prefix but the whole is refused (a JSON-looking prefix too).
            assert!(decode(&bytes[..cut], &parse).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer, &parse).is_err());
        let mut bad_form = bytes.clone();
        // The last request's form byte sits before its length and bytes.
        let Kept::Batch(last) = &requests[4].1 else {
            panic!("batch")
        };
        let at = bytes.len() - last.len() - 5;
        bad_form[at] = 7;
        assert!(decode(&bad_form, &parse).unwrap_err().contains("form 7"));
    }

    #[test]
    fn a_body_that_no_longer_parses_is_an_error() {
        let a = integration(1, "a");
        let r = IngestRecord {
            now: at(1, 0),
            integration: a,
            batch: batch("x"),
        };
        let bytes = encode(false, std::iter::once((&r, &Kept::Body(Bytes::new()))));
        assert!(
            decode(&bytes, &parse)
                .unwrap_err()
                .contains("does not parse")
        );
    }

    #[test]
    fn records_of_the_json_layout_are_still_read_each_its_own_session() {
        let bytes = br#"{"integrations":[{"id":7,"name":"old","kind":"alertmanager","token_hash":"h","token_hint":"t","service_id":1,"created_by":{"kind":"system","id":0,"name":"system"},"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}],"requests":[[0,{"now":"2026-01-01T00:00:01Z","batch":{"alerts":[],"truncated":2}}]]}"#;
        let back = decode(bytes, &parse).expect("decode");
        assert!(!back.joins);
        assert_eq!(back.requests.len(), 1);
        assert_eq!(back.requests[0].integration.id, 7);
        assert_eq!(back.requests[0].batch.truncated, 2);
        let missing = br#"{"integrations":[],"requests":[[0,{"now":"2026-01-01T00:00:00Z","batch":{"alerts":[],"truncated":0}}]]}"#;
        assert!(decode(missing, &parse).is_err());
    }
}
