//! The weight rule of [`crate::weight`] in the Curator layout: an instance's weight is the
//! `weight` of its Spring Cloud Zookeeper metadata (`payload.metadata.weight`, a string, as
//! Spring writes every metadata value), so that is what an operator changes and what a zoorpc
//! provider keeps. An instance without that metadata (a `null` payload, or a payload of another
//! class) has no place for a weight: setting one is refused, since adding a Spring payload
//! would change the payload's class under the Java readers that expect another.

use serde_json::Value;

use crate::error::{Error, Result, excerpt};
use crate::weight::WEIGHT;

/// The node's JSON with `payload.metadata.weight` set to `weight`; an error when the data is no
/// JSON object or its payload has no metadata object.
pub(crate) fn with_weight(data: &[u8], weight: u32) -> Result<Vec<u8>> {
    let mut document: Value = serde_json::from_slice(data).map_err(|e| Error::InvalidInstance {
        data: excerpt(&String::from_utf8_lossy(data)),
        reason: e.to_string(),
    })?;
    let Some(metadata) = document
        .get_mut("payload")
        .and_then(|p| p.get_mut("metadata"))
        .and_then(Value::as_object_mut)
    else {
        return Err(Error::InvalidSetting {
            setting: "weight",
            value: weight.to_string(),
            reason: "this Curator instance has no Spring Cloud Zookeeper metadata to hold a \
                     weight (its payload is null or of another class); register it with \
                     Spring's payload (zoorpc provider --curator-payload spring-cloud) to weigh it"
                .to_owned(),
        });
    };
    metadata.insert(WEIGHT.to_owned(), Value::String(weight.to_string()));
    Ok(document.to_string().into_bytes())
}

/// Whether `found` is the JSON `ours` with only its `payload.metadata.weight` changed, to a
/// whole number from 0 to 2^32-1 or removed (the rule of [`crate::weight`]).
pub(crate) fn reweighted(ours: &[u8], found: &[u8]) -> bool {
    let (Ok(mut ours), Ok(mut found)) = (
        serde_json::from_slice::<Value>(ours),
        serde_json::from_slice::<Value>(found),
    ) else {
        return false;
    };
    let ours_weight = take_weight(&mut ours);
    let found_weight = take_weight(&mut found);
    let valid = match &found_weight {
        Some(Value::String(w)) => w.parse::<u32>().is_ok(),
        Some(_) => false,
        None => true,
    };
    ours.is_object() && ours == found && ours_weight != found_weight && valid
}

/// Removes and returns `payload.metadata.weight`.
fn take_weight(document: &mut Value) -> Option<Value> {
    document
        .get_mut("payload")?
        .get_mut("metadata")?
        .as_object_mut()?
        .remove(WEIGHT)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPRING: &[u8] = br#"{"name":"a","id":"b","address":"h","port":1,
        "payload":{"@class":"x","metadata":{"weight":"100","zone":"a"}}}"#;

    #[test]
    fn the_weight_goes_into_spring_metadata_and_is_recognised() {
        let set = with_weight(SPRING, 7).unwrap();
        let json: Value = serde_json::from_slice(&set).unwrap();
        assert_eq!(json["payload"]["metadata"]["weight"], "7");
        assert_eq!(json["payload"]["metadata"]["zone"], "a");
        assert_eq!(json["port"], 1);
        assert!(reweighted(SPRING, &set));
        assert!(!reweighted(SPRING, SPRING), "the same data is no change");
        let moved = String::from_utf8(set)
            .unwrap()
            .replace("\"port\":1", "\"port\":2");
        assert!(!reweighted(SPRING, moved.as_bytes()), "another port");
        let negative = String::from_utf8(with_weight(SPRING, 7).unwrap())
            .unwrap()
            .replace("\"7\"", "\"-1\"");
        assert!(!reweighted(SPRING, negative.as_bytes()), "no weight");
        assert!(!reweighted(b"http://h:1?weight=1", b"http://h:1?weight=2"));
    }

    #[test]
    fn an_instance_without_spring_metadata_has_no_place_for_a_weight() {
        for data in [
            &br#"{"name":"a","id":"b","address":"h","port":1,"payload":null}"#[..],
            br#"{"name":"a","id":"b","address":"h","port":1,"payload":{"@class":"y"}}"#,
            b"not json",
        ] {
            let err = with_weight(data, 7).unwrap_err().to_string();
            assert!(err.contains("Curator"), "{err}");
            assert!(!reweighted(data, data));
        }
        let err = with_weight(
            br#"{"name":"a","id":"b","address":"h","port":1,"payload":null}"#,
            7,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("--curator-payload spring-cloud"), "{err}");
    }
}
