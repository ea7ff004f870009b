#![warn(missing_docs)]
#![doc = include_str!("../README.md")]
//!
//! # Layout of the `zoorpc` crate
//!
//! - [`registry`] (`zoorpc-registry`): everything that talks to ZooKeeper: sessions that survive
//!   expiry, registration, discovery, master election, master-only jobs.
//! - [`provider`] (`zoorpc-provider`): serving a gRPC service and keeping it registered; the
//!   active/standby server (`HaServer`) and the standby-refusal protocol.
//! - [`consumer`] (`zoorpc-consumer`): the live endpoint list, picking, retry, ejection, the
//!   balanced channel, `lookup()`, the master-following client.
//! - [`proto`] (`zoorpc-proto`): `hello.v1.HelloService` and the standby refusal.
//!
//! The programs' bodies (`apps`: the `zoorpc` command, the `zoorpc-*` programs, the examples)
//! and what their command lines share (`cli`) live in this crate too, so a binary and its
//! example are one code path. They are not part of the API: hidden from these docs, no
//! stability promised, changed with the programs.
//!
//! Data flows one way: ZooKeeper → registry (typed events) → consumer (endpoint set) → tonic.
//!
//! What a provider registers is plain data, checked before it is written:
//!
//! ```
//! use zoorpc::registry::ProviderUrl;
//! let url = ProviderUrl::http("127.0.0.1", 11214)?.with_metadata("weight", "50")?;
//! assert_eq!(url.as_str(), "http://127.0.0.1:11214?weight=50");
//! # Ok::<(), zoorpc::registry::Error>(())
//! ```

pub use zoorpc_consumer as consumer;
pub use zoorpc_proto as proto;
pub use zoorpc_provider as provider;
pub use zoorpc_registry as registry;

// The programs' bodies and their command lines: public only so the binaries in src/bin/ and
// the examples can reach them (a binary or example is a crate of its own), hidden from the
// docs because they are not API (as clap_builder hides what only its derive macros call). The
// programs' flag docs are their `--help` lines, where `<path>` or `<pid>` is a placeholder, as
// in a usage line, not HTML.
#[doc(hidden)]
#[allow(rustdoc::invalid_html_tags)]
pub mod apps;
#[doc(hidden)]
pub mod cli;

/// Logs to stderr, filtered by `RUST_LOG` (default: warnings), so stdout stays for the
/// programs' exact output lines.
pub fn init_logging() {
    init_logging_at("warn");
}

/// [`init_logging`] with another default level (`RUST_LOG` still wins): the one-shot commands
/// (`zoorpc ls`, `call`, ...) log only errors, so what they print is their own lines. Colours
/// only on a terminal: a log file or a pipe gets plain text. The libraries' settings in a log
/// line are named by the programs' flags (`cli::with_flags`), as in their error lines.
pub fn init_logging_at(default: &str) {
    init_logging_filter(
        tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
    );
}

/// Logs to stderr what `filter` lets through, as [`init_logging_at`] does.
pub(crate) fn init_logging_filter(filter: tracing_subscriber::EnvFilter) {
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| FlagsWriter(std::io::stderr()))
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// stderr for log lines, each (the formatter writes a line at once) with the settings it names
/// replaced by the programs' flags.
struct FlagsWriter(std::io::Stderr);

impl std::io::Write for FlagsWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match std::str::from_utf8(buf) {
            Ok(text) => self.0.write_all(cli::with_flags(text).as_bytes())?,
            Err(_) => self.0.write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}
