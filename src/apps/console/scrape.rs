//! Traffic: the Prometheus text of the processes the console is told about (`--scrape ADDR`,
//! each a `zoorpc proxy --metrics` or another consumer's `--metrics` listener), read once a
//! second, turned into rates per provider endpoint: calls per second (attempts answered or
//! failed), failures per second by class, ejections, and the last minute of calls per second
//! for the charts. Several consumers calling one provider add up.
//!
//! Only the addresses given on the command line are scraped, never an address found in
//! ZooKeeper: a node's data is anyone's to write, and a `metrics=host:port` there would make the
//! console fetch whatever a writer names, from inside the network (server-side request forgery).
//!
//! A target that does not answer within [`SCRAPE_TIMEOUT`] is shown as down with the reason; its
//! counters are left out of that second's rates (a restarted process's counters start again
//! from zero: a counter that went down counts as no calls, never as negative ones).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

/// How often the targets are read.
pub(super) const SCRAPE_EVERY: Duration = Duration::from_secs(1);
/// How long one target may take to answer.
const SCRAPE_TIMEOUT: Duration = Duration::from_millis(900);
/// The largest metrics page read.
const MAX_PAGE: usize = 4 << 20;
/// How many rates the charts keep per endpoint (a minute).
const HISTORY: usize = 60;
/// The time a chart spans: [`HISTORY`] scrapes.
pub(super) const CHART_WINDOW: Duration =
    Duration::from_secs(SCRAPE_EVERY.as_secs() * HISTORY as u64);

/// Counters of one endpoint, summed over the targets.
#[derive(Clone, Debug, Default, PartialEq)]
struct Counters {
    attempts: f64,
    failures: BTreeMap<String, f64>,
    ejections: f64,
}

/// Starts scraping `targets` (none: nothing runs); the receiver gets the traffic as JSON.
pub(super) fn start(targets: Vec<SocketAddr>) -> watch::Receiver<Value> {
    let (tx, rx) = watch::channel(Value::Null);
    if !targets.is_empty() {
        tokio::spawn(scrape_forever(targets, tx));
    }
    rx
}

async fn scrape_forever(targets: Vec<SocketAddr>, tx: watch::Sender<Value>) {
    let mut ticker = tokio::time::interval(SCRAPE_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: Option<(Instant, BTreeMap<String, Counters>)> = None;
    let mut history: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    loop {
        ticker.tick().await;
        let pages = futures_join(&targets).await;
        let now = Instant::now();
        let mut totals: BTreeMap<String, Counters> = BTreeMap::new();
        let mut shown = Vec::new();
        for (addr, page) in targets.iter().zip(pages) {
            match page {
                Ok(text) => {
                    add_counters(&mut totals, &text);
                    shown.push(json!({ "addr": addr.to_string(), "ok": true, "error": null }));
                }
                Err(e) => shown.push(json!({ "addr": addr.to_string(), "ok": false, "error": e })),
            }
        }
        // An endpoint no target names any more (every target read) has no line to draw.
        if shown.iter().all(|t| t["ok"] == true) {
            history.retain(|endpoint, _| totals.contains_key(endpoint));
        }
        let endpoints = rates(last.as_ref(), now, &totals, &mut history);
        last = Some((now, totals));
        if tx
            .send(json!({ "targets": shown, "endpoints": endpoints }))
            .is_err()
        {
            return;
        }
    }
}

/// Every target's page, read at once.
async fn futures_join(targets: &[SocketAddr]) -> Vec<Result<String, String>> {
    let reads: Vec<_> = targets
        .iter()
        .map(|&a| tokio::spawn(read_page(a)))
        .collect();
    let mut pages = Vec::with_capacity(reads.len());
    for read in reads {
        pages.push(read.await.unwrap_or_else(|e| Err(e.to_string())));
    }
    pages
}

/// The rates since the last scrape, per endpoint (the history updated).
fn rates(
    last: Option<&(Instant, BTreeMap<String, Counters>)>,
    now: Instant,
    totals: &BTreeMap<String, Counters>,
    history: &mut BTreeMap<String, Vec<f64>>,
) -> Value {
    let mut endpoints = serde_json::Map::new();
    for (endpoint, counters) in totals {
        let before = last.and_then(|(_, seen)| seen.get(endpoint));
        let seconds = last.map_or(0.0, |(at, _)| (now - *at).as_secs_f64());
        let rate = |now: f64, then: Option<f64>| match then {
            Some(then) if seconds > 0.0 => ((now - then).max(0.0) / seconds * 10.0).round() / 10.0,
            _ => 0.0,
        };
        let calls = rate(counters.attempts, before.map(|b| b.attempts));
        let failures: serde_json::Map<String, Value> = counters
            .failures
            .iter()
            .map(|(class, n)| {
                let then = before.map(|b| b.failures.get(class).copied().unwrap_or(0.0));
                (class.clone(), json!(rate(*n, then)))
            })
            .collect();
        let kept = history.entry(endpoint.clone()).or_default();
        kept.push(calls);
        if kept.len() > HISTORY {
            kept.remove(0);
        }
        endpoints.insert(
            endpoint.clone(),
            json!({
                "calls_per_s": calls,
                "failures_per_s": failures,
                "ejections_total": counters.ejections,
                "history": kept,
            }),
        );
    }
    Value::Object(endpoints)
}

/// Adds the samples of one page to `totals`.
fn add_counters(totals: &mut BTreeMap<String, Counters>, page: &str) {
    for line in page.lines().filter(|l| !l.starts_with('#')) {
        let Some((name, labels, value)) = sample(line) else {
            continue;
        };
        let Some(endpoint) = labels.get("endpoint") else {
            continue;
        };
        let counters = totals.entry(endpoint.clone()).or_default();
        match name {
            "zoorpc_attempts_total" => counters.attempts += value,
            "zoorpc_attempt_failures_total" => {
                counters.attempts += value;
                let class = labels.get("class").cloned().unwrap_or_default();
                *counters.failures.entry(class).or_default() += value;
            }
            "zoorpc_ejections_total" => counters.ejections += value,
            _ => {}
        }
    }
}

/// One sample line, `name{k="v",...} value`: its name, labels and value.
fn sample(line: &str) -> Option<(&str, BTreeMap<String, String>, f64)> {
    let (series, value) = line.trim_end().rsplit_once(' ')?;
    let value = value.parse().ok()?;
    let Some((name, rest)) = series.split_once('{') else {
        return Some((series, BTreeMap::new(), value));
    };
    let mut labels = BTreeMap::new();
    let mut chars = rest.strip_suffix('}')?.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        if key.is_empty() || chars.next() != Some('"') {
            break;
        }
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => match chars.next()? {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                c => value.push(c),
            }
        }
        labels.insert(key.trim_start_matches(',').to_owned(), value);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    Some((name, labels, value))
}

/// `GET /metrics` at `addr`: the body, or why not.
async fn read_page(addr: SocketAddr) -> Result<String, String> {
    let read = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        stream
            .take(MAX_PAGE as u64)
            .read_to_end(&mut answer)
            .await?;
        Ok::<_, std::io::Error>(answer)
    };
    let answer = match tokio::time::timeout(SCRAPE_TIMEOUT, read).await {
        Ok(Ok(answer)) => String::from_utf8_lossy(&answer).into_owned(),
        Ok(Err(e)) => return Err(format!("cannot read http://{addr}/metrics: {e}")),
        Err(_) => {
            return Err(format!(
                "http://{addr}/metrics did not answer within {SCRAPE_TIMEOUT:?}"
            ));
        }
    };
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("http://{addr}/metrics: not an HTTP answer"))?;
    if !head.starts_with("HTTP/1.1 200") {
        let status = head.lines().next().unwrap_or_default();
        return Err(format!("http://{addr}/metrics answered {status}"));
    }
    let chunked = head
        .lines()
        .any(|l| l.to_ascii_lowercase().replace(' ', "") == "transfer-encoding:chunked");
    Ok(if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    })
}

/// The body of a chunked answer.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
        else {
            break;
        };
        if size == 0 || rest.len() < size || !rest.is_char_boundary(size) {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_with_labels_and_escapes_are_read() {
        let (name, labels, value) = sample(
            r#"zoorpc_attempt_failures_total{class="never_sent",endpoint="http://127.0.0.1:1"} 3"#,
        )
        .unwrap();
        assert_eq!(name, "zoorpc_attempt_failures_total");
        assert_eq!(labels["endpoint"], "http://127.0.0.1:1");
        assert_eq!(labels["class"], "never_sent");
        assert_eq!(value, 3.0);
        let (_, labels, _) = sample(r#"x{a="q\"u,o=te",b="2"} 1"#).unwrap();
        assert_eq!(labels["a"], "q\"u,o=te");
        assert_eq!(labels["b"], "2");
        assert!(sample("garbage").is_none());
    }

    #[test]
    fn a_chunked_body_is_put_together() {
        assert_eq!(
            dechunk("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
            "hello world"
        );
    }

    #[test]
    fn rates_per_endpoint_never_go_negative() {
        let mut history = BTreeMap::new();
        let at = Instant::now();
        let mut page = BTreeMap::new();
        add_counters(
            &mut page,
            "zoorpc_attempts_total{endpoint=\"e\",code=\"OK\"} 100\n",
        );
        let first = rates(None, at, &page, &mut history);
        assert_eq!(first["e"]["calls_per_s"], 0.0);
        let mut later = BTreeMap::new();
        add_counters(
            &mut later,
            "zoorpc_attempts_total{endpoint=\"e\",code=\"OK\"} 150\nzoorpc_attempt_failures_total{endpoint=\"e\",class=\"refused\"} 10\n",
        );
        let last = Some((at, page));
        let second = rates(
            last.as_ref(),
            at + Duration::from_secs(2),
            &later,
            &mut history,
        );
        assert_eq!(second["e"]["calls_per_s"], 30.0);
        assert_eq!(second["e"]["failures_per_s"]["refused"], 5.0);
        let restarted = rates(
            Some(&(at, later)),
            at + Duration::from_secs(3),
            &BTreeMap::from([("e".to_owned(), Counters::default())]),
            &mut history,
        );
        assert_eq!(restarted["e"]["calls_per_s"], 0.0);
        assert_eq!(history["e"].len(), 3);
    }
}
