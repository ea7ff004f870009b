//! Property tests of the parsers of what users and other programs hand us:
//! provider URLs, connect strings, znode paths, contender addresses. For any input: no panic;
//! a rejection is the parser's own error with a message naming what was wrong; an accepted value
//! round-trips (parsing what it prints gives the same value, its parts rebuild it).
//! Pure functions: no ZooKeeper needed.

use proptest::prelude::*;

#[path = "support/zk_path_rule.rs"]
mod zk_path_rule;
use zk_path_rule::zookeeper_accepts;
use zoorpc_registry::election::{read_address, validate_address};
use zoorpc_registry::{ConnectString, Error, ProviderUrl, validate_path};

/// Strings close to valid ones: the characters the grammars care about, in any order.
fn near_miss(alphabet: &'static str, max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(
        proptest::sample::select(alphabet.chars().collect::<Vec<_>>()),
        0..max,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        near_miss(
            "htps:/[]:0123456789az.-_@?&=# \u{0}\u{7f}é\u{e000}\u{fff0}",
            40
        ),
    ]
}

/// Ports as written: valid, signed, out of range, with spaces.
fn port_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "[1-9][0-9]{0,4}",
        "[+\\-][0-9]{1,5}",
        "0[0-9]{1,4}",
        "[+\\-0-9 ]{0,7}"
    ]
}

/// URLs put together from valid and broken parts.
fn url_like() -> impl Strategy<Value = String> {
    (
        prop_oneof!["http", "https", "ftp", "", "HTTP"],
        prop_oneof!["://", ":/", ""],
        prop_oneof![host(), near_miss("az09.-_[]:@ ", 8)],
        prop_oneof![":", ""],
        port_like(),
        prop_oneof!["", "/", "/x"],
        prop_oneof!["".prop_map(String::from), near_miss("?&=#ab", 8)],
    )
        .prop_map(|(a, b, c, d, e, f, g)| format!("{a}{b}{c}{d}{e}{f}{g}"))
}

/// Connect strings put together from valid and broken parts.
fn connect_like() -> impl Strategy<Value = String> {
    (
        proptest::collection::vec(
            (
                prop_oneof![host(), near_miss("az09.-[]: ", 8)],
                prop_oneof![":", ""],
                port_like(),
            )
                .prop_map(|(h, c, p)| format!("{h}{c}{p}")),
            0..4,
        )
        .prop_map(|entries| entries.join(",")),
        prop_oneof!["".prop_map(String::from), path(), near_miss("/a.", 6)],
    )
        .prop_map(|(hosts, chroot)| format!("{hosts}{chroot}"))
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9][a-z0-9.\\-_]{0,20}",
        any::<std::net::Ipv4Addr>().prop_map(|ip| ip.to_string()),
        any::<std::net::Ipv6Addr>().prop_map(|ip| format!("[{ip}]")),
    ]
}

fn segment() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_:.\\-]{1,12}".prop_filter("not . or ..", |s| s != "." && s != "..")
}

fn path() -> impl Strategy<Value = String> {
    proptest::collection::vec(segment(), 1..5)
        .prop_map(|segments| format!("/{}", segments.join("/")))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn provider_urls_never_panic_and_rejections_say_why(raw in prop_oneof![any_text(), url_like()]) {
        match raw.parse::<ProviderUrl>() {
            Ok(url) => {
                prop_assert_eq!(url.as_str(), raw.as_str());
                prop_assert_eq!(&url.as_str().parse::<ProviderUrl>().unwrap(), &url);
                // The parts rebuild an equal endpoint.
                let endpoint: ProviderUrl = url.endpoint().parse().unwrap();
                prop_assert_eq!((endpoint.scheme(), endpoint.host(), endpoint.port()),
                    (url.scheme(), url.host(), url.port()));
                prop_assert!(url.port() != 0);
                // What is dialled is what was written: the URL starts with its endpoint.
                prop_assert!(raw.starts_with(&url.endpoint()), "{raw} dials {}", url.endpoint());
            }
            Err(e) => {
                prop_assert!(matches!(e, Error::InvalidUrl { .. }), "{e:?}");
                let text = e.to_string();
                prop_assert!(text.starts_with("invalid provider URL"), "{text}");
                prop_assert!(text.len() < 1200, "an error message of {} bytes", text.len());
            }
        }
        let _ = ProviderUrl::from_bytes(raw.as_bytes());
    }

    #[test]
    fn provider_url_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Err(e) = ProviderUrl::from_bytes(&data) {
            prop_assert!(e.to_string().starts_with("invalid provider URL"), "{e}");
        }
    }

    #[test]
    fn valid_provider_urls_round_trip(
        https in any::<bool>(),
        host in host(),
        port in 1u16..,
        metadata in proptest::collection::vec(("[a-z][a-z0-9_]{0,8}", "[a-zA-Z0-9_.\\-]{1,8}"), 0..4),
    ) {
        let scheme = if https { "https" } else { "http" };
        let mut raw = format!("{scheme}://{host}:{port}");
        for (i, (k, v)) in metadata.iter().enumerate() {
            raw.push(if i == 0 { '?' } else { '&' });
            raw.push_str(&format!("{k}={v}"));
        }
        let url: ProviderUrl = raw.parse().map_err(|e| TestCaseError::fail(format!("{raw}: {e}")))?;
        prop_assert_eq!(url.as_str(), raw.as_str());
        prop_assert_eq!(url.scheme(), scheme);
        prop_assert_eq!(url.host(), host.as_str());
        prop_assert_eq!(url.port(), port);
        let pairs: Vec<(String, String)> = metadata.clone();
        prop_assert_eq!(url.metadata_pairs(), pairs.as_slice());
        if !https {
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            let mut built = ProviderUrl::http(bare, port).unwrap();
            for (k, v) in &metadata {
                built = built.with_metadata(k, v).unwrap();
            }
            prop_assert_eq!(built, url);
        }
    }

    #[test]
    fn connect_strings_never_panic_and_rejections_say_why(raw in prop_oneof![any_text(), connect_like()]) {
        match ConnectString::parse(&raw) {
            Ok(cs) => {
                prop_assert_eq!(cs.as_str(), raw.trim());
                prop_assert_eq!(&ConnectString::parse(&cs.to_string()).unwrap(), &cs);
                prop_assert!(!cs.hosts().is_empty());
                prop_assert!(cs.hosts().iter().all(|(h, p)| !h.is_empty() && *p != 0));
                // Each entry is its host and port as written.
                let entries: Vec<&str> = cs.hosts_str().split(',').map(str::trim).collect();
                prop_assert_eq!(entries.len(), cs.hosts().len());
                for (entry, (host, port)) in entries.iter().zip(cs.hosts()) {
                    prop_assert!(entry.ends_with(&format!(":{port}")) && entry.contains(host.as_str()), "{entry} read as {host} {port}");
                }
                if let Some(chroot) = cs.chroot() {
                    prop_assert!(validate_path(chroot).is_ok());
                }
            }
            Err(e) => {
                prop_assert!(matches!(e, Error::InvalidConnectString { .. }), "{e:?}");
                prop_assert!(e.to_string().starts_with("invalid ZooKeeper connect string"), "{e}");
            }
        }
    }

    #[test]
    fn valid_connect_strings_round_trip(
        hosts in proptest::collection::vec((host(), 1u16..), 1..4),
        chroot in proptest::option::of(path()),
    ) {
        let hosts_part = hosts.iter().map(|(h, p)| format!("{h}:{p}")).collect::<Vec<_>>().join(",");
        let raw = format!("{hosts_part}{}", chroot.as_deref().unwrap_or(""));
        let cs = ConnectString::parse(&raw).map_err(|e| TestCaseError::fail(format!("{raw}: {e}")))?;
        prop_assert_eq!(cs.as_str(), raw.as_str());
        prop_assert_eq!(cs.hosts_str(), hosts_part.as_str());
        prop_assert_eq!(cs.chroot(), chroot.as_deref());
        let parsed: Vec<(String, u16)> = hosts
            .iter()
            .map(|(h, p)| (h.trim_start_matches('[').trim_end_matches(']').to_owned(), *p))
            .collect();
        prop_assert_eq!(cs.hosts(), parsed.as_slice());
    }

    #[test]
    fn paths_never_panic_and_accepted_ones_are_what_zookeeper_accepts(raw in any_text()) {
        match validate_path(&raw) {
            Ok(path) => {
                prop_assert_eq!(path, raw.as_str());
                prop_assert!(zookeeper_accepts(path), "{path:?} would be refused by ZooKeeper");
            }
            Err(e) => {
                prop_assert!(matches!(e, Error::InvalidPath { .. }), "{e:?}");
                let text = e.to_string();
                prop_assert!(text.starts_with("invalid znode path"), "{text}");
            }
        }
    }

    #[test]
    fn valid_paths_are_accepted_unchanged(path in path()) {
        prop_assert_eq!(validate_path(&path).unwrap(), path.as_str());
    }

    #[test]
    fn addresses_never_panic_and_round_trip_through_node_data(raw in any_text()) {
        match validate_address(&raw) {
            Ok(address) => {
                prop_assert_eq!(address, raw.as_str());
                prop_assert_eq!(read_address(address.as_bytes()), Ok(raw.clone()));
            }
            Err(e) => {
                prop_assert!(matches!(e, Error::InvalidAddress { .. }), "{e:?}");
                prop_assert!(e.to_string().starts_with("invalid master address"), "{e}");
                prop_assert!(read_address(raw.as_bytes()).is_err() || raw.trim() != raw);
            }
        }
    }

    #[test]
    fn node_data_never_panics_the_address_reader(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        match read_address(&data) {
            Ok(address) => {
                prop_assert!(validate_address(&address).is_ok());
                prop_assert_eq!(std::str::from_utf8(&data).map(str::trim), Ok(address.as_str()));
            }
            Err(text) => prop_assert!(text.len() <= 4 * data.len()),
        }
    }
}

/// Found by `make fuzz` (provider_url): 1,290 bytes of control characters made a 1.3 KB error
/// line, each one escaped to six characters; 70 KB inputs were quoted whole. Every parser's
/// error now quotes at most 200 escaped characters of its input.
#[test]
fn error_messages_stay_one_short_line_whatever_the_input() {
    let inputs = [
        format!("g//{}", "\u{1a}".repeat(1290)),
        "x".repeat(70_000),
        format!("http://{}:80", "\u{7f}".repeat(5000)),
        format!("{}:2181", "é\u{0}".repeat(9000)),
    ];
    for raw in &inputs {
        let messages = [
            raw.parse::<ProviderUrl>()
                .map(|_| ())
                .map_err(|e| e.to_string()),
            ProviderUrl::from_bytes(raw.as_bytes())
                .map(|_| ())
                .map_err(|e| e.to_string()),
            ConnectString::parse(raw)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            validate_path(raw).map(|_| ()).map_err(|e| e.to_string()),
            validate_address(raw).map(|_| ()).map_err(|e| e.to_string()),
        ];
        for (i, message) in messages.into_iter().enumerate() {
            let Err(message) = message else {
                panic!(
                    "parser {i} accepted: {:?}",
                    raw.chars().take(40).collect::<String>()
                );
            };
            assert!(message.len() <= 1000, "{} bytes: {message}", message.len());
            assert!(!message.contains('\n'), "{message}");
        }
    }
}

/// Found by `make fuzz` (records): a credential file of NULs and control characters was taken
/// as a user name. Control characters are refused, with a reason that does not echo the file.
#[test]
fn credentials_with_control_characters_are_refused_without_echoing_them() {
    for text in [
        "\0\0\0\u{8}  \u{1c} :    \"",
        "svc:xyzzy\u{7f}plugh",
        "s\u{1b}[31mvc:secret",
    ] {
        let err = zoorpc_registry::ZkCredential::parse(text).expect_err(text);
        let message = err.to_string();
        assert!(message.contains("control characters"), "{message}");
        assert!(
            !message.contains("secret") && !message.contains("plugh"),
            "{message}"
        );
    }
    assert!(zoorpc_registry::ZkCredential::parse("svc:s3cret\n").is_ok());
}
