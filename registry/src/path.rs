//! Validation of the znode paths users hand us (base paths, election paths), so a typo is
//! reported where it is made rather than as an obscure ZooKeeper error later.

use crate::error::{Error, Result};

/// Checks that `path` is an absolute znode path without a trailing slash or empty segments, and
/// returns it unchanged.
pub fn validate_path(path: &str) -> Result<&str> {
    let fail = |reason| {
        Err(Error::InvalidPath {
            path: path.to_owned(),
            reason,
        })
    };
    if !path.starts_with('/') {
        return fail("must start with '/'");
    }
    if path == "/" {
        return fail("the root cannot be used; name a node such as /registry");
    }
    if path.ends_with('/') {
        return fail("must not end with '/'");
    }
    if path.contains("//") {
        return fail("must not contain empty segments ('//')");
    }
    if path.split('/').any(|s| s == "." || s == "..") {
        return fail("must not contain '.' or '..' segments");
    }
    if path.chars().any(|c| c == '\0' || c.is_control()) {
        return fail("must not contain control characters");
    }
    Ok(path)
}

#[allow(dead_code)] // used by the election recipes
/// The parent of an absolute path (`/a/b` → `/a`), `None` for a top-level node.
pub(crate) fn parent(path: &str) -> Option<&str> {
    match path.rfind('/') {
        Some(0) | None => None,
        Some(i) => Some(&path[..i]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_rejects() {
        assert!(validate_path("/registry").is_ok());
        assert!(validate_path("/soa/master/services/HelloService:1.0.0").is_ok());
        for (bad, why) in [
            ("registry", "start with '/'"),
            ("/", "root"),
            ("/a/", "end with '/'"),
            ("/a//b", "empty segments"),
            ("/a/../b", "'..'"),
            ("/a\u{1}", "control characters"),
        ] {
            let err = validate_path(bad).unwrap_err().to_string();
            assert!(
                err.contains(why) && err.contains(&format!("{bad:?}")),
                "{err}"
            );
        }
    }

    #[test]
    fn parents() {
        assert_eq!(parent("/a/b/c"), Some("/a/b"));
        assert_eq!(parent("/a"), None);
    }
}
