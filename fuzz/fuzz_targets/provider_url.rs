//! A provider node's data, as ZooKeeper hands it over: never a panic; accepted URLs read back
//! as written and dial what they say; rejections are `InvalidUrl` with a bounded message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zoorpc_registry::{Error, ProviderUrl};

fuzz_target!(|data: &[u8]| {
    match ProviderUrl::from_bytes(data) {
        Ok(url) => {
            let again: ProviderUrl = match url.as_str().parse() {
                Ok(again) => again,
                Err(e) => panic!("{:?} accepted, its text refused: {e}", url.as_str()),
            };
            assert_eq!(again, url);
            assert_ne!(url.port(), 0);
            assert!(url.as_str().starts_with(&url.endpoint()));
            let endpoint: ProviderUrl = match url.endpoint().parse() {
                Ok(endpoint) => endpoint,
                Err(e) => panic!("the endpoint of {:?} is refused: {e}", url.as_str()),
            };
            assert_eq!(
                (endpoint.scheme(), endpoint.host(), endpoint.port()),
                (url.scheme(), url.host(), url.port())
            );
        }
        Err(e) => {
            assert!(matches!(e, Error::InvalidUrl { .. }), "{e:?}");
            let text = e.to_string();
            assert!(text.starts_with("invalid provider URL"), "{text}");
            assert!(text.len() <= 1200, "{} bytes", text.len());
        }
    }
});
