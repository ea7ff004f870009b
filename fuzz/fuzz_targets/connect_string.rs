//! `--zk` as an operator types it: never a panic; accepted strings parse back the same, with
//! non-empty hosts, non-zero ports and a valid chroot; rejections are `InvalidConnectString`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zoorpc_registry::{ConnectString, Error, validate_path};

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    match ConnectString::parse(raw) {
        Ok(cs) => {
            assert_eq!(cs.as_str(), raw.trim());
            match ConnectString::parse(&cs.to_string()) {
                Ok(again) => assert_eq!(again, cs),
                Err(e) => panic!("{raw:?} accepted, its text refused: {e}"),
            }
            assert!(!cs.hosts().is_empty());
            assert!(cs.hosts().iter().all(|(h, p)| !h.is_empty() && *p != 0));
            if let Some(chroot) = cs.chroot() {
                assert!(validate_path(chroot).is_ok(), "{chroot:?}");
            }
        }
        Err(e) => {
            assert!(matches!(e, Error::InvalidConnectString { .. }), "{e:?}");
            assert!(
                e.to_string()
                    .starts_with("invalid ZooKeeper connect string")
            );
        }
    }
});
