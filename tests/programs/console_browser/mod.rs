//! The console's page in a real headless browser (Debian's `chromium`, installed by
//! `scripts/install-chromium` as ZooKeeper is by `scripts/install-zookeeper`), driven through
//! the DevTools protocol over a pipe (`--remote-debugging-pipe`: JSON messages ended by a NUL
//! byte on file descriptors 3 and 4), so the test reads the page as rendered by its own script,
//! live, and the browser's console. Writes the README's screenshot to
//! `target/tmp/console.png`.

use crate::common;

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use common::{eventually_blocking, run_command_bounded};
use serde_json::{Value, json};
use zoorpc_testkit::ChildProcess;

mod busy;
mod elections;
mod page;

/// A headless chromium and its DevTools pipe.
struct Browser {
    _process: ChildProcess,
    _profile: tempfile::TempDir,
    to: File,
    from: mpsc::Receiver<Value>,
    next_id: u64,
    /// The events received so far (console messages, exceptions, log entries).
    events: Vec<Value>,
    session: String,
}

/// `fd` moved to a descriptor of 10 or more, close-on-exec (so the dup2 to 3 and 4 in the child
/// cannot overwrite another of the four, and no other child inherits it).
fn high_fd(fd: RawFd) -> RawFd {
    // SAFETY: fcntl and close on descriptors this function owns.
    unsafe {
        let high = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10);
        assert!(high >= 10, "cannot move a pipe's descriptor");
        libc::close(fd);
        high
    }
}

fn pipe() -> (RawFd, RawFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills `fds`.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    (high_fd(fds[0]), high_fd(fds[1]))
}

impl Browser {
    /// Starts chromium, opens a page, attaches to it and listens to its console.
    fn start(program: &str) -> Browser {
        let (process, profile, to, from) = spawn_browser(program);
        let mut browser = Browser {
            _process: process,
            _profile: profile,
            to,
            from,
            next_id: 0,
            events: Vec::new(),
            session: String::new(),
        };
        let target = browser.call("Target.createTarget", json!({ "url": "about:blank" }));
        let attached = browser.call(
            "Target.attachToTarget",
            json!({ "targetId": target["targetId"], "flatten": true }),
        );
        browser.session = attached["sessionId"]
            .as_str()
            .expect("a session")
            .to_owned();
        for domain in ["Runtime.enable", "Log.enable", "Page.enable"] {
            browser.call(domain, json!({}));
        }
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": 1280, "height": 860, "deviceScaleFactor": 1, "mobile": false }),
        );
        browser
    }
}

/// Chromium with its DevTools pipe: the process, its profile, the pipe's two ends (the messages
/// read by a thread of their own).
fn spawn_browser(program: &str) -> (ChildProcess, tempfile::TempDir, File, mpsc::Receiver<Value>) {
    let profile = tempfile::tempdir().expect("a profile dir");
    let (browser_reads, we_write) = pipe();
    let (we_read, browser_writes) = pipe();
    let mut cmd = Command::new(program);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--remote-debugging-pipe",
    ])
    .args([
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .arg("about:blank")
    .stderr(std::process::Stdio::null());
    // SAFETY: only dup2 (async-signal-safe) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(browser_reads, 3) < 0 || libc::dup2(browser_writes, 4) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let process = ChildProcess::spawn("chromium", cmd).expect("spawn chromium");
    // SAFETY: the descriptors are ours; the child holds its own copies.
    let (to, from) = unsafe {
        libc::close(browser_reads);
        libc::close(browser_writes);
        (File::from_raw_fd(we_write), File::from_raw_fd(we_read))
    };
    (process, profile, to, messages(from))
}

/// The browser's messages (JSON, each ended by a NUL byte) on `pipe`, as they come.
fn messages(pipe: File) -> mpsc::Receiver<Value> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        loop {
            let mut message = Vec::new();
            match reader.read_until(0, &mut message) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            message.pop();
            let Ok(value) = serde_json::from_slice(&message) else {
                continue;
            };
            if tx.send(value).is_err() {
                return;
            }
        }
    });
    rx
}

impl Browser {
    /// Sends one command (to the page once attached) and waits for its answer.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if !self.session.is_empty() {
            message["sessionId"] = json!(self.session);
        }
        let mut bytes = message.to_string().into_bytes();
        bytes.push(0);
        self.to.write_all(&bytes).expect("write to the browser");
        loop {
            let answer = self
                .from
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("the browser did not answer {method}"));
            if answer["id"] == id {
                assert!(answer["error"].is_null(), "{method}: {answer}");
                return answer["result"].clone();
            }
            self.events.push(answer);
        }
    }

    /// Evaluates `expression` in the page; its value (JSON text evaluated to a string is parsed).
    fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true }),
        );
        let value = &result["result"]["value"];
        value
            .as_str()
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or_else(|| value.clone())
    }

    /// What the page shows, read from its DOM.
    fn page(&mut self) -> Value {
        self.eval(
            r#"JSON.stringify((() => {
                const rows = [...document.querySelectorAll("tr.provider")];
                const text = sel => [...document.querySelectorAll(sel)].map(r => r.textContent);
                return {
                    good: rows.filter(r => !r.classList.contains("bad")).map(r => r.children[1].textContent),
                    bad: rows.filter(r => r.classList.contains("bad")).map(r => r.textContent),
                    images: document.querySelectorAll("img").length,
                    elements_in_bad_cells: [...document.querySelectorAll("tr.bad td.url *")].map(e => e.tagName),
                    masters: text("tr.election"),
                    timeline: text("tr.timeline"),
                    mode: document.getElementById("mode").textContent,
                    link: document.getElementById("link").textContent,
                    chart_lines: document.querySelectorAll("svg.chart polyline").length,
                };
            })())"#,
        )
    }

    /// The errors the page's console and log showed.
    fn errors(&mut self) -> Vec<Value> {
        self.eval("1"); // takes in the events sent so far
        self.events
            .iter()
            .filter(|e| {
                e["method"] == "Runtime.exceptionThrown"
                    || (e["method"] == "Runtime.consoleAPICalled" && e["params"]["type"] == "error")
                    || (e["method"] == "Log.entryAdded" && e["params"]["entry"]["level"] == "error")
            })
            .cloned()
            .collect()
    }
}

/// The browser to drive, installing Debian's chromium if missing; `None` (and why, on stderr)
/// only when it cannot be installed.
fn chromium() -> Option<String> {
    if let Some(program) = std::env::var_os("CHROMIUM") {
        return Some(program.to_string_lossy().into_owned());
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install-chromium");
    let (code, out, err, _) = run_command_bounded(Command::new(script), Duration::from_secs(600));
    if code != Some(0) {
        eprintln!(
            "SKIPPED: the console's browser test needs chromium and scripts/install-chromium could not install it:\n{out}{err}"
        );
        return None;
    }
    Some("chromium".to_owned())
}

/// Waits until the page shows what `check` accepts; returns it.
fn until(browser: &mut Browser, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    eventually_blocking(what, Duration::from_secs(20), || {
        let page = browser.page();
        if check(&page) { Ok(page) } else { Err(page) }
    })
}

fn has(list: &Value, text: &str) -> bool {
    list.as_array().is_some_and(|l| {
        l.iter()
            .any(|v| v.as_str().is_some_and(|s| s.contains(text)))
    })
}

/// Standard base64 (the DevTools protocol's binary data).
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.trim_end_matches('=').as_bytes().chunks(4) {
        let bits = chunk.iter().enumerate().fold(0u32, |acc, (i, &c)| {
            acc | (u32::from(value(c)) << (18 - 6 * i))
        });
        out.extend(&bits.to_be_bytes()[1..chunk.len()]);
    }
    out
}
