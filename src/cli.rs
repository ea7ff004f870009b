//! `Flags`: the tiny command-line parser the example programs share: `--name value` or
//! `--name=value`, positional words, `--help`. Unknown flags are errors that name the flag.

use std::str::FromStr;

/// Parsed command-line flags.
#[derive(Debug, Default)]
pub struct Flags {
    values: Vec<(String, String)>,
    positional: Vec<String>,
}

impl Flags {
    /// Parses `args` (without the program name), accepting only `known` flag names
    /// (without `--`).
    ///
    /// ```
    /// use zoorpc::cli::Flags;
    /// let f = Flags::parse(["run", "--zk", "h:1", "--calls=3"].map(String::from), &["zk", "calls"]).unwrap();
    /// assert_eq!(f.str("zk"), Some("h:1"));
    /// assert_eq!(f.get("calls", 10u32).unwrap(), 3);
    /// assert_eq!(f.positional(), ["run"]);
    /// assert!(Flags::parse(["--nope", "1"].map(String::from), &["zk"]).is_err());
    /// ```
    pub fn parse(args: impl IntoIterator<Item = String>, known: &[&str]) -> Result<Flags, String> {
        let mut flags = Flags::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let Some(flag) = arg.strip_prefix("--") else {
                flags.positional.push(arg);
                continue;
            };
            let (name, value) = match flag.split_once('=') {
                Some((n, v)) => (n.to_owned(), v.to_owned()),
                None => {
                    let value = args
                        .next()
                        .ok_or_else(|| format!("--{flag} needs a value"))?;
                    (flag.to_owned(), value)
                }
            };
            if !known.contains(&name.as_str()) {
                return Err(format!("unknown flag --{name}"));
            }
            flags.values.push((name, value));
        }
        Ok(flags)
    }

    /// Parses the process arguments; prints `usage` and exits on `--help` (0) or an error (2).
    pub fn from_env(usage: &str, known: &[&str]) -> Flags {
        let args: Vec<String> = std::env::args().skip(1).collect();
        if args.iter().any(|a| a == "--help" || a == "-h") {
            println!("{usage}");
            std::process::exit(0);
        }
        match Flags::parse(args, known) {
            Ok(f) => f,
            Err(e) => fail(usage, &e),
        }
    }

    /// The last value of `--name`.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `--name` parsed as `T`, or `default` when absent.
    pub fn get<T: FromStr>(&self, name: &str, default: T) -> Result<T, String>
    where
        T::Err: std::fmt::Display,
    {
        match self.str(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|e| format!("bad value {v:?} for --{name}: {e}")),
        }
    }

    /// The required `--zk` connect string.
    ///
    /// ```
    /// use zoorpc::cli::Flags;
    /// let f = Flags::parse(["--zk", "h:1"].map(String::from), &["zk"]).unwrap();
    /// assert_eq!(f.zk().unwrap(), "h:1");
    /// assert!(Flags::default().zk().unwrap_err().contains("--zk"));
    /// ```
    pub fn zk(&self) -> Result<String, String> {
        self.str("zk")
            .map(str::to_owned)
            .ok_or_else(|| "--zk HOST:PORT is required".to_owned())
    }

    /// Words that are not flags, in order.
    pub fn positional(&self) -> &[String] {
        &self.positional
    }
}

/// Prints `error` and `usage` to stderr and exits with status 2.
pub fn fail(usage: &str, error: &str) -> ! {
    eprintln!("error: {error}\n\n{usage}");
    std::process::exit(2)
}

/// Unwraps a flag value or exits with the usage.
pub fn or_exit<T>(usage: &str, value: Result<T, String>) -> T {
    match value {
        Ok(v) => v,
        Err(e) => fail(usage, &e),
    }
}
