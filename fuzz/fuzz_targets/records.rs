//! What files and ZooKeeper nodes hold besides URLs: the digest credential file and a job's
//! run record. Never a panic; a rejected credential never echoes the input; accepted records
//! round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zoorpc_registry::{JobRecord, ZkCredential};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match ZkCredential::parse(text) {
        Ok(credential) => {
            assert!(!credential.user().is_empty());
            // The password never shows in what may be logged.
            let shown = format!("{credential:?}");
            if let Some((_, password)) = text.trim().split_once(':') {
                let plain = password.chars().all(|c| c.is_ascii_alphanumeric());
                if plain && password.len() >= 4 && !credential.user().contains(password) {
                    assert!(!shown.contains(password), "{shown}");
                }
            }
        }
        Err(e) => {
            let message = e.to_string();
            if text.trim().len() >= 8 {
                assert!(
                    !message.contains(text.trim()),
                    "the input echoed: {message}"
                );
            }
        }
    }
    if let Some(record) = JobRecord::parse(text) {
        assert_eq!(JobRecord::parse(&record.encode()), Some(record));
    }
});
