//! Znode paths (`--base-path`, `--path`) and master addresses (flags and node data): never a
//! panic; accepted paths are what ZooKeeper accepts; addresses round-trip through node data.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zoorpc_registry::election::{read_address, validate_address};
use zoorpc_registry::{Error, validate_path};

#[path = "../../registry/tests/support/zk_path_rule.rs"]
mod zk_path_rule;
use zk_path_rule::zookeeper_accepts;

fuzz_target!(|data: &[u8]| {
    match read_address(data) {
        Ok(address) => {
            assert!(validate_address(&address).is_ok(), "{address:?}");
            assert_eq!(
                std::str::from_utf8(data).map(str::trim),
                Ok(address.as_str())
            );
        }
        Err(text) => assert!(text.len() <= 4 * data.len() + 200, "{} bytes", text.len()),
    }
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    match validate_path(raw) {
        Ok(path) => {
            assert_eq!(path, raw);
            assert!(
                zookeeper_accepts(path),
                "{path:?} would be refused by ZooKeeper"
            );
        }
        Err(e) => {
            assert!(matches!(e, Error::InvalidPath { .. }), "{e:?}");
            assert!(e.to_string().starts_with("invalid znode path"));
        }
    }
    match validate_address(raw) {
        Ok(address) => assert_eq!(read_address(address.as_bytes()), Ok(raw.to_owned())),
        Err(e) => assert!(matches!(e, Error::InvalidAddress { .. }), "{e:?}"),
    }
});
