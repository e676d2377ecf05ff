//! A real SMTP server for the e-mail tests: aiosmtpd (PyPI) driven by
//! `tests/peers/smtp_sink.py`, on a loopback port the test picks, storing every message it
//! accepts as `NNNN.eml` + `NNNN.json` in a directory the test reads back.
//!
//! Without a Python that can `import aiosmtpd` (env `INCIDENTD_PYTHON`, else `python3`) the
//! tests that need it print `SKIPPED` and return, unless `INCIDENTD_REQUIRE_PEERS=1` (CI),
//! where a missing peer fails them.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A Python interpreter that has aiosmtpd, or `None` after printing `SKIPPED`.
/// Panics instead when `INCIDENTD_REQUIRE_PEERS=1`.
pub fn peer_python_or_skip() -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(p) = std::env::var_os("INCIDENTD_PYTHON").filter(|p| !p.is_empty()) {
        candidates.push(PathBuf::from(p));
    }
    candidates.push(PathBuf::from("python3"));
    for py in &candidates {
        let ok = Command::new(py)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(py.clone());
        }
    }
    super::peers::missing(&format!(
        "a Python with aiosmtpd (pip install aiosmtpd, or set INCIDENTD_PYTHON; tried {candidates:?})"
    ))
}

/// The running SMTP sink (killed on drop).
pub struct SmtpSink {
    child: Option<Child>,
    python: PathBuf,
    /// The SMTP port on 127.0.0.1.
    pub port: u16,
    /// Where messages are stored.
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/smtp_sink.py")
}

impl SmtpSink {
    /// A sink that is not running yet: its port and directory are fixed, so a daemon can be
    /// configured for it before it is up (outage tests). `start()` brings it up.
    pub fn down(python: PathBuf) -> SmtpSink {
        let tmp = tempfile::tempdir().expect("tempdir");
        SmtpSink {
            child: None,
            python,
            port: super::free_port(),
            dir: tmp.path().to_owned(),
            _tmp: Some(tmp),
        }
    }

    /// Starts a sink on a free port.
    pub async fn up(python: PathBuf) -> SmtpSink {
        let mut s = SmtpSink::down(python);
        s.start().await;
        s
    }

    /// The `notify.email.smtp_url` for it.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on its port and directory; waits for its 220 banner.
    pub async fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::File::create(self.dir.join("smtp-sink.log")).expect("log");
        let child = Command::new(&self.python)
            .arg(script())
            .args(["--dir"])
            .arg(&self.dir)
            .args(["--port", &self.port.to_string(), "--http-port", "0"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn smtp_sink.py");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 3];
                if s.read_exact(&mut buf).is_ok() && &buf == b"220" {
                    return;
                }
            }
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!(
                    "smtp_sink.py exited with {status}: {}",
                    std::fs::read_to_string(self.dir.join("smtp-sink.log")).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "SMTP sink not ready on port {}",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the server (the stored messages stay).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Every message received so far, in order (the sink's NNNN.json records: mail_from,
    /// rcpt_tos, subject, from, to, body).
    pub fn messages(&self) -> Vec<Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| {
                        p.extension().is_some_and(|x| x == "json")
                            && p.file_stem().is_some_and(|s| {
                                s.to_string_lossy().chars().all(|c| c.is_ascii_digit())
                            })
                    })
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
            .iter()
            .filter_map(|p| {
                let text = std::fs::read_to_string(p).ok()?;
                // A record still being written does not parse yet; the next look sees it.
                serde_json::from_str(&text).ok()
            })
            .collect()
    }

    /// Waits until at least `n` messages match `pred`; returns them.
    pub async fn wait_for(
        &self,
        n: usize,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let hits: Vec<Value> = self.messages().into_iter().filter(|m| pred(m)).collect();
            if hits.len() >= n {
                return hits;
            }
            assert!(
                Instant::now() < deadline,
                "waited {timeout:?} for {n} e-mails, got {}: {:#?}",
                hits.len(),
                self.messages()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}
