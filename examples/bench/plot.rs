//! The failover timeline as an SVG a person reads at a glance: calls per 100 ms stacked by the
//! provider that answered, failed calls in a red lane, p99 latency per 100 ms on a log scale,
//! and a vertical mark at every kill and restart. Written by hand: no plotting crate.

use std::fmt::Write;
use std::time::Duration;

/// One time bucket.
pub struct Bucket {
    /// Successful calls per provider slot (the last entry: answered by an unknown node).
    pub per_slot: Vec<u32>,
    /// Failed calls.
    pub errors: u32,
    /// p99 latency of the calls started in the bucket (NaN: none).
    pub p99_ms: f64,
}

/// A kill or a restart of the provider in `slot`, at `at` since the load began.
#[derive(Clone, Debug)]
pub enum Mark {
    Kill { at: Duration, slot: usize },
    Restart { at: Duration, slot: usize },
}

/// What the plot shows.
pub struct Timeline {
    pub bucket: Duration,
    pub slots: usize,
    pub buckets: Vec<Bucket>,
    pub marks: Vec<Mark>,
}

const WIDTH: f64 = 1100.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const CALLS_TOP: f64 = 70.0;
const CALLS_HEIGHT: f64 = 230.0;
const FAIL_TOP: f64 = 312.0;
const FAIL_HEIGHT: f64 = 22.0;
const LAT_TOP: f64 = 352.0;
const LAT_HEIGHT: f64 = 130.0;
const AXIS_Y: f64 = LAT_TOP + LAT_HEIGHT;
const HEIGHT: f64 = AXIS_Y + 40.0;
/// Colours of the provider slots (and grey for an unknown node).
const COLOURS: &[&str] = &["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2"];
const UNKNOWN: &str = "#999999";
const RED: &str = "#d62728";
const GREEN: &str = "#2ca02c";
/// Latency axis: 0.1 ms to 10 s, log scale.
const LAT_MIN_MS: f64 = 0.1;
const LAT_MAX_MS: f64 = 10_000.0;

fn colour(slot: usize, slots: usize) -> &'static str {
    if slot >= slots {
        UNKNOWN
    } else {
        COLOURS[slot % COLOURS.len()]
    }
}

/// The smallest round number (1, 2, 2.5, 3, 4, 5, 6, 8 × 10^k) at least `value`.
fn nice_ceiling(value: f64) -> f64 {
    let magnitude = 10f64.powf(value.max(1.0).log10().floor());
    [1.0, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|v| *v >= value)
        .unwrap_or(10.0 * magnitude)
}

/// XML-escapes text.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl Timeline {
    fn x(&self, at: Duration) -> f64 {
        let span = self.bucket.as_secs_f64() * self.buckets.len().max(1) as f64;
        LEFT + (WIDTH - LEFT - RIGHT) * (at.as_secs_f64() / span).clamp(0.0, 1.0)
    }

    fn latency_y(ms: f64) -> f64 {
        let ms = ms.clamp(LAT_MIN_MS, LAT_MAX_MS);
        let f = (ms / LAT_MIN_MS).log10() / (LAT_MAX_MS / LAT_MIN_MS).log10();
        LAT_TOP + LAT_HEIGHT * (1.0 - f)
    }

    /// The SVG document.
    pub fn svg(&self, title: &str) -> String {
        let mut s = String::new();
        // Writing to a String cannot fail.
        let _ = self.write(&mut s, title);
        s
    }

    fn write(&self, s: &mut String, title: &str) -> std::fmt::Result {
        let bar = (WIDTH - LEFT - RIGHT) / self.buckets.len().max(1) as f64;
        let most = self
            .buckets
            .iter()
            .map(|b| b.per_slot.iter().sum::<u32>() + b.errors)
            .max()
            .unwrap_or(0)
            .max(1);
        let top = nice_ceiling(f64::from(most) * 1.05);
        let scale = CALLS_HEIGHT / top;
        self.write_legend(s, title)?;
        write_panels(s, self.bucket, top, scale)?;
        self.write_bars(s, bar, scale)?;
        self.write_latency(s, bar)?;
        self.write_marks(s)?;
        self.write_time_axis(s)?;
        writeln!(s, "</svg>")
    }

    /// The document's opening, the title and the legend.
    fn write_legend(&self, s: &mut String, title: &str) -> std::fmt::Result {
        writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">"#
        )?;
        writeln!(
            s,
            r#"<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>"#
        )?;
        writeln!(
            s,
            r#"<text x="{LEFT}" y="20" font-size="13" font-weight="bold">{}</text>"#,
            escape(title)
        )?;
        // Legend.
        let mut lx = LEFT;
        for slot in 0..self.slots {
            writeln!(
                s,
                r#"<rect x="{lx}" y="32" width="10" height="10" fill="{}"/><text x="{}" y="41">answered by p{}</text>"#,
                colour(slot, self.slots),
                lx + 14.0,
                slot + 1
            )?;
            lx += 120.0;
        }
        writeln!(
            s,
            r#"<rect x="{lx}" y="32" width="10" height="10" fill="{RED}"/><text x="{}" y="41">failed calls</text>"#,
            lx + 14.0
        )?;
        lx += 100.0;
        writeln!(
            s,
            r#"<line x1="{lx}" y1="37" x2="{}" y2="37" stroke="{RED}" stroke-dasharray="4,3"/><text x="{}" y="41">SIGKILL</text>"#,
            lx + 20.0,
            lx + 24.0
        )?;
        lx += 80.0;
        writeln!(
            s,
            r#"<line x1="{lx}" y1="37" x2="{}" y2="37" stroke="{GREEN}" stroke-dasharray="4,3"/><text x="{}" y="41">restarted (registered)</text>"#,
            lx + 20.0,
            lx + 24.0
        )?;
        Ok(())
    }

    /// Bars: stacked successes by slot (`scale`: pixels per call), failures in their lane.
    fn write_bars(&self, s: &mut String, bar: f64, scale: f64) -> std::fmt::Result {
        for (i, b) in self.buckets.iter().enumerate() {
            let x = LEFT + bar * i as f64;
            let mut y = CALLS_TOP + CALLS_HEIGHT;
            for (slot, &count) in b.per_slot.iter().enumerate() {
                if count == 0 {
                    continue;
                }
                let h = f64::from(count) * scale;
                y -= h;
                writeln!(
                    s,
                    r#"<rect x="{x:.2}" y="{y:.2}" width="{:.2}" height="{h:.2}" fill="{}"/>"#,
                    bar.max(0.5),
                    colour(slot, self.slots)
                )?;
            }
            if b.errors > 0 {
                writeln!(
                    s,
                    r#"<rect x="{x:.2}" y="{FAIL_TOP}" width="{:.2}" height="{FAIL_HEIGHT}" fill="{RED}"><title>{} failed</title></rect>"#,
                    bar.max(1.5),
                    b.errors
                )?;
            }
        }
        if self.buckets.iter().all(|b| b.errors == 0) {
            writeln!(
                s,
                r##"<text x="{}" y="{}" fill="#888">none</text>"##,
                LEFT + 6.0,
                FAIL_TOP + FAIL_HEIGHT / 2.0 + 4.0
            )?;
        }
        Ok(())
    }

    /// The p99 latency line, with gaps where a bucket had no call.
    fn write_latency(&self, s: &mut String, bar: f64) -> std::fmt::Result {
        let mut path = String::new();
        let mut pen_down = false;
        for (i, b) in self.buckets.iter().enumerate() {
            if !b.p99_ms.is_finite() {
                pen_down = false;
                continue;
            }
            let x = LEFT + bar * (i as f64 + 0.5);
            let y = Self::latency_y(b.p99_ms);
            let _ = write!(path, "{}{x:.1},{y:.1} ", if pen_down { "L" } else { "M" });
            pen_down = true;
        }
        writeln!(
            s,
            r##"<path d="{}" fill="none" stroke="#333" stroke-width="1.2"/>"##,
            path.trim_end()
        )
    }

    /// Kill and restart marks across every panel.
    fn write_marks(&self, s: &mut String) -> std::fmt::Result {
        for mark in &self.marks {
            let (at, slot, stroke, label, dy) = match mark {
                Mark::Kill { at, slot } => (*at, *slot, RED, "kill", 0.0),
                Mark::Restart { at, slot } => (*at, *slot, GREEN, "up", 12.0),
            };
            let x = self.x(at);
            writeln!(
                s,
                r#"<line x1="{x:.1}" y1="{CALLS_TOP}" x2="{x:.1}" y2="{AXIS_Y}" stroke="{stroke}" stroke-dasharray="4,3"/><text x="{:.1}" y="{}" fill="{stroke}">{label} p{}</text>"#,
                x + 2.0,
                CALLS_TOP + 11.0 + dy,
                slot + 1
            )?;
        }
        Ok(())
    }

    /// The time axis, with a tick at a round step.
    fn write_time_axis(&self, s: &mut String) -> std::fmt::Result {
        let plot_w = WIDTH - LEFT - RIGHT;
        let n = self.buckets.len();
        let span = self.bucket.as_secs_f64() * n as f64;
        let step = [1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0]
            .into_iter()
            .find(|step| span / step <= 20.0)
            .unwrap_or(600.0);
        let mut t = 0.0;
        while t <= span + 1e-9 {
            let x = self.x(Duration::from_secs_f64(t));
            writeln!(
                s,
                r##"<line x1="{x:.1}" y1="{AXIS_Y}" x2="{x:.1}" y2="{}" stroke="#333"/><text x="{x:.1}" y="{}" text-anchor="middle">{t} s</text>"##,
                AXIS_Y + 4.0,
                AXIS_Y + 16.0
            )?;
            t += step;
        }
        writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">time since the load began</text>"#,
            LEFT + plot_w / 2.0,
            AXIS_Y + 32.0
        )
    }
}

/// Panel frames and y axes (`top`: the calls axis's top value; `scale`: pixels per call).
fn write_panels(s: &mut String, bucket: Duration, top: f64, scale: f64) -> std::fmt::Result {
    let plot_w = WIDTH - LEFT - RIGHT;
    for (top, height) in [
        (CALLS_TOP, CALLS_HEIGHT),
        (FAIL_TOP, FAIL_HEIGHT),
        (LAT_TOP, LAT_HEIGHT),
    ] {
        writeln!(
            s,
            r##"<rect x="{LEFT}" y="{top}" width="{plot_w}" height="{height}" fill="none" stroke="#ccc"/>"##
        )?;
    }
    let per_bucket_ms = bucket.as_millis();
    writeln!(
        s,
        r#"<text x="14" y="{}" transform="rotate(-90 14 {})" text-anchor="middle">calls per {per_bucket_ms} ms</text>"#,
        CALLS_TOP + CALLS_HEIGHT / 2.0,
        CALLS_TOP + CALLS_HEIGHT / 2.0
    )?;
    for frac in [0.0, 0.5, 1.0] {
        let value = (top * frac).round();
        let y = CALLS_TOP + CALLS_HEIGHT - value * scale;
        writeln!(
            s,
            r##"<text x="{}" y="{}" text-anchor="end">{value}</text><line x1="{LEFT}" y1="{y}" x2="{}" y2="{y}" stroke="#eee"/>"##,
            LEFT - 4.0,
            y + 4.0,
            LEFT + plot_w
        )?;
    }
    writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="end" fill="{RED}">failed</text>"#,
        LEFT - 4.0,
        FAIL_TOP + FAIL_HEIGHT / 2.0 + 4.0
    )?;
    write_latency_axis(s, plot_w)
}

/// The latency panel's logarithmic y axis, 0.1 ms to 10 s, with its label.
fn write_latency_axis(s: &mut String, plot_w: f64) -> std::fmt::Result {
    writeln!(
        s,
        r#"<text x="14" y="{}" transform="rotate(-90 14 {})" text-anchor="middle">p99 latency</text>"#,
        LAT_TOP + LAT_HEIGHT / 2.0,
        LAT_TOP + LAT_HEIGHT / 2.0
    )?;
    for (ms, label) in [
        (0.1, "0.1 ms"),
        (1.0, "1 ms"),
        (10.0, "10 ms"),
        (100.0, "100 ms"),
        (1000.0, "1 s"),
        (10_000.0, "10 s"),
    ] {
        let y = Timeline::latency_y(ms);
        writeln!(
            s,
            r##"<text x="{}" y="{}" text-anchor="end">{label}</text><line x1="{LEFT}" y1="{y}" x2="{}" y2="{y}" stroke="#eee"/>"##,
            LEFT - 4.0,
            y + 4.0,
            LEFT + plot_w
        )?;
    }
    Ok(())
}
