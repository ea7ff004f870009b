//! What every program's command line shares: one clap parse per program ([`parse`]) whose
//! usage errors are one line and status 2, the value parsers that give a flag the same meaning
//! and range in every program ([`number`], [`millis`], ...), and the mapping of the libraries'
//! settings to the programs' flags in error and log lines ([`with_flags`]).
//!
//! Not part of the `zoorpc` API (hidden from its docs): public only because each binary and
//! example is a crate of its own; what is here changes with the programs, without notice.

mod values;

pub use values::{MAX_MS, file_name, millis, number, socket_address};

/// Parses the process arguments into `T`: `--help` and `--version` print and exit with status 0;
/// a usage error (an unknown flag, a missing or bad value) is one line on stderr,
/// `error: <clap's message>; see --help`, and status 2. A flag that takes one value, given twice
/// (or with its alias), is a usage error too (clap's default): which one would win is a guess
/// the program does not make for the user; flags meant to repeat (`--service`, `--scrape`)
/// collect every value.
pub fn parse<T: clap::Parser>() -> T {
    parse_from(std::env::args_os())
}

/// [`parse`] of `args` (the first is the program's name).
pub fn parse_from<T: clap::Parser>(
    args: impl IntoIterator<Item = impl Into<std::ffi::OsString> + Clone>,
) -> T {
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    let command = negative_values(T::command());
    let parsed = match global_given_twice(&command, &args) {
        Some(e) => Err(e),
        None => command
            .try_get_matches_from(args)
            .and_then(|mut matches| T::from_arg_matches_mut(&mut matches)),
    };
    match parsed {
        Ok(parsed) => parsed,
        Err(e) => exit_on(&e),
    }
}

/// The usage error for a global flag (`--log-level`) given more than once in `args`: clap
/// refuses a flag given twice among one command's flags, but merges a global one given both
/// before and after a subcommand (`zoorpc --log-level info ls --log-level debug`) into its
/// last value. Arguments after `--` are values, not flags.
fn global_given_twice(command: &clap::Command, args: &[std::ffi::OsString]) -> Option<clap::Error> {
    let words: Vec<&str> = args
        .iter()
        .skip(1)
        .filter_map(|arg| arg.to_str())
        .take_while(|arg| *arg != "--")
        .collect();
    command
        .get_arguments()
        .filter(|arg| arg.is_global_set() && arg.get_action().takes_values())
        .find_map(|arg| {
            let long = arg.get_long()?;
            let names: Vec<String> = std::iter::once(long)
                .chain(arg.get_all_aliases().into_iter().flatten())
                .map(|name| format!("--{name}"))
                .collect();
            let given = words
                .iter()
                .filter(|word| {
                    names.iter().any(|name| {
                        word.strip_prefix(name.as_str())
                            .is_some_and(|rest| rest.is_empty() || rest.starts_with('='))
                    })
                })
                .count();
            (given > 1).then(|| {
                command.clone().error(
                    clap::error::ErrorKind::ArgumentConflict,
                    format!("the argument '--{long}' cannot be used multiple times"),
                )
            })
        })
}

/// `command` and its subcommands with every flag that takes a value accepting one that looks
/// like a negative number (`--port -1`), so the flag's value parser refuses it naming the flag,
/// the value and the range, as it does `--port=-1`; clap would otherwise call `-1` an unknown
/// flag. No program has a flag named like a number, so nothing is shadowed.
fn negative_values(command: clap::Command) -> clap::Command {
    command
        .mut_args(|arg| {
            if arg.get_action().takes_values() {
                arg.allow_negative_numbers(true)
            } else {
                arg
            }
        })
        .mut_subcommands(negative_values)
}

/// Ends the process on clap's error `e`: help and version on stdout with status 0, a usage
/// error as one line with status 2 (also help shown because a subcommand is missing).
pub fn exit_on(e: &clap::Error) -> ! {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            std::process::exit(0)
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            std::process::exit(2)
        }
        _ => {
            eprintln!("{}", usage_error_line(&e.render().to_string()));
            std::process::exit(2)
        }
    }
}

/// clap's rendered error (the error, tips, usage) as one line: the error and its tips, then
/// where to look.
///
/// ```
/// let rendered = "error: unexpected argument '--prot' found\n\n  tip: a similar argument exists: '--port'\n\nUsage: p --port <N>\n\nFor more information, try '--help'.\n";
/// assert_eq!(
///     zoorpc::cli::usage_error_line(rendered),
///     "error: unexpected argument '--prot' found tip: a similar argument exists: '--port'; see --help"
/// );
/// ```
pub fn usage_error_line(rendered: &str) -> String {
    let mut words = Vec::new();
    for line in rendered.lines() {
        if line.starts_with("Usage:") || line.starts_with("For more information") {
            break;
        }
        words.extend(line.split_whitespace().map(str::to_owned));
    }
    // A 70 KB value stays out of the one line: its start and its size.
    error_line(&format!("{}; see --help", words.join(" ")))
}

/// What the libraries' messages call a setting ([`zoorpc_registry::error::settings`],
/// [`zoorpc_consumer::error::settings`], [`zoorpc_provider::error::settings`]), and what the
/// programs call it: their flags. The one place programs map settings to flags.
const SETTING_FLAGS: &[(&str, &str)] = {
    use zoorpc_consumer::error::settings as consumer;
    use zoorpc_provider::error::settings as provider;
    use zoorpc_registry::error::settings as registry;
    &[
        (registry::ZK, "--zk"),
        (
            registry::ZK_AUTH,
            "that identity's user:password file with --zk-auth-file (or ZOORPC_ZK_AUTH_FILE)",
        ),
        (
            registry::START_CONTENDER,
            "a contender on that path (e.g. `zoorpc-ha-server --zk HOST:PORT --path PATH`)",
        ),
        (
            consumer::START_PROVIDER,
            "a provider with that base path (e.g. `zoorpc provider --zk HOST:PORT --base-path PATH`)",
        ),
        (consumer::TLS_CA, "--tls-ca"),
        (
            consumer::TLS_IDENTITY,
            "--tls-client-cert and --tls-client-key",
        ),
        (consumer::TLS_SERVER_NAME, "--tls-server-name"),
        (consumer::CA_FILE, "CA certificate (--tls-ca)"),
        (
            consumer::CLIENT_CERT_FILE,
            "client certificate (--tls-client-cert)",
        ),
        (consumer::CLIENT_KEY_FILE, "client key (--tls-client-key)"),
        (provider::PORT, "--port"),
        (provider::LISTEN_HOST, "--listen-host"),
        (provider::ADVERTISE_HOST, "--advertise-host"),
        (provider::CERT_FILE, "certificate (--tls-cert)"),
        (provider::KEY_FILE, "private key (--tls-key)"),
        (provider::CLIENT_CA_FILE, "client CA (--tls-client-ca)"),
    ]
};

/// `text` (a library's message) as a program says it: every setting the libraries name
/// replaced with the program's flag for it.
///
/// ```
/// use zoorpc::cli::with_flags;
/// let e = zoorpc_consumer::Error::NoProviders { base_path: "/registry".into() };
/// assert_eq!(
///     with_flags(&e.to_string()),
///     "no providers registered under /registry: start a provider with that base path \
///      (e.g. `zoorpc provider --zk HOST:PORT --base-path PATH`) or check the base path"
/// );
/// assert_eq!(with_flags("no setting here"), "no setting here");
/// ```
pub fn with_flags(text: &str) -> String {
    let mut text = text.to_owned();
    for (setting, flag) in SETTING_FLAGS {
        if text.contains(setting) {
            text = text.replace(setting, flag);
        }
    }
    text
}

/// An error line of a program: the library's message [`with_flags`], [`shorten`]ed.
pub fn error_line(text: &str) -> String {
    shorten(&with_flags(text))
}

/// `text` with every word longer than 200 bytes cut to its start and its size, and a line still
/// over 1,000 bytes cut to its start and end, so a 70 KB
/// value given to a flag keeps an error message one readable line.
///
/// ```
/// let long = "x".repeat(70_000);
/// let line = zoorpc::cli::shorten(&format!("bad value {long} for --zk"));
/// assert!(line.len() < 200, "{line}");
/// assert!(line.ends_with("...(70000 bytes) for --zk"));
/// assert_eq!(zoorpc::cli::shorten("bad value 7"), "bad value 7");
/// let many = "1 ".repeat(35_000);
/// let line = zoorpc::cli::shorten(&format!("bad value {many} for --count; see --help"));
/// assert!(line.len() < 1100 && line.ends_with("for --count; see --help"), "{line}");
/// ```
pub fn shorten(text: &str) -> String {
    /// What a line may take before its middle is cut.
    const LINE: usize = 1000;
    let words = if text.split_whitespace().all(|word| word.len() <= 200) {
        text.to_owned()
    } else {
        text.split(' ')
            .map(|word| {
                if word.len() > 200 {
                    let start: String = word.chars().take(60).collect();
                    format!("{start}...({} bytes)", word.len())
                } else {
                    word.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    if words.len() <= LINE {
        return words;
    }
    // Many short words: the start and the end (which usually says what to do), and the size.
    let start: String = words.chars().take(LINE / 2).collect();
    let end: String = {
        let tail: Vec<char> = words.chars().rev().take(LINE / 4).collect();
        tail.into_iter().rev().collect()
    };
    format!("{start} ...({} bytes)... {end}", text.len())
}
