//! Znode paths: validation of the paths users hand us (base paths, election paths), so a typo
//! is reported where it is made rather than as an obscure ZooKeeper error later; parents; and
//! creating a path with its missing ancestors (Curator's `ZKPaths` and `EnsurePath`).

use zookeeper_client as zk;

use super::requests::{MAX_LOST_REPLIES, unanswered, wait_reconnected};
use crate::auth::NodeAcl;
use crate::error::{Error, Result};

/// Checks that `path` is an absolute znode path without a trailing slash, empty, `.` or `..`
/// segments, control characters or the characters ZooKeeper refuses, and returns it unchanged:
/// what it accepts, ZooKeeper accepts.
///
/// ```
/// use zoorpc_registry::{Error, validate_path};
/// assert_eq!(validate_path("/soa/master/services/HelloService:1.0.0")?, "/soa/master/services/HelloService:1.0.0");
/// for bad in ["registry", "/", "/registry/", "/a//b", "/a/../b"] {
///     assert!(matches!(validate_path(bad), Err(Error::InvalidPath { .. })), "{bad}");
/// }
/// let err = validate_path("/registry/").unwrap_err();
/// assert_eq!(err.to_string(), "invalid znode path \"/registry/\": must not end with '/'");
/// # Ok::<(), Error>(())
/// ```
pub fn validate_path(path: &str) -> Result<&str> {
    let fail = |reason| {
        Err(Error::InvalidPath {
            path: crate::error::excerpt(path),
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
    // ZooKeeper's own rule (PathUtils.validatePath, on Java's UTF-16 code units) also refuses
    // these, and every character beyond U+FFFF (a surrogate pair in Java); caught here, the
    // error names the path instead of coming back as "bad arguments" from the server.
    if path
        .chars()
        .any(|c| matches!(c, '\u{e000}'..='\u{f8ff}' | '\u{fff0}'..='\u{ffff}') || c > '\u{ffff}')
    {
        return fail(
            "must not contain characters ZooKeeper refuses (U+E000 to U+F8FF, U+FFF0 and above)",
        );
    }
    Ok(path)
}

/// The parent of an absolute path (`/a/b` → `/a`), `None` for a top-level node.
pub(crate) fn parent(path: &str) -> Option<&str> {
    match path.rfind('/') {
        Some(0) | None => None,
        Some(i) => Some(&path[..i]),
    }
}

/// Creates `path` and its missing ancestors as persistent nodes with `acl`; an unanswered request is asked
/// again once connected (creating what exists is fine). On a client chrooted by its connect
/// string (`host:port/app`), a chroot that went missing (an operator's `deleteall /app`) is
/// created again first, as when the session was opened: "created when missing" holds for the
/// whole life of the session, not only at its start.
pub(crate) async fn ensure_path(client: &zk::Client, path: &str, acl: NodeAcl) -> Result<()> {
    let mut attempts = 0;
    loop {
        // Looked up first: ZooKeeper checks the parent's ACL before existence, so creating a
        // path that exists under a parent we may not change would fail with NoAuth.
        match client.check_stat(path).await {
            Ok(Some(_)) => return Ok(()),
            Ok(None) => {}
            Err(e) if unanswered(&e) && attempts < MAX_LOST_REPLIES => {
                attempts += 1;
                wait_reconnected(client).await?;
                continue;
            }
            Err(e) => return Err(Error::zk("read", &absolute(client, path), e)),
        }
        match client.mkdir(path, &super::persistent(acl)).await {
            Ok(()) | Err(zk::Error::NodeExists) => return Ok(()),
            // zookeeper-client's `mkdir` climbs no higher than the chroot: `NoNode` is the
            // chroot itself missing. Deleted again after it was made: asked again, bounded.
            Err(zk::Error::NoNode) if client.path() != "/" && attempts < MAX_LOST_REPLIES => {
                attempts += 1;
                create_chroot(client, acl).await?;
            }
            Err(e) if unanswered(&e) && attempts < MAX_LOST_REPLIES => {
                attempts += 1;
                wait_reconnected(client).await?;
            }
            // Refused somewhere on the way down: name the node whose create was refused (its
            // parent's ACL said no), not the deepest one, which may be several levels below.
            Err(zk::Error::NoAuth) => {
                let refused = first_missing(client, path).await;
                return Err(Error::zk(
                    "create",
                    &absolute(client, refused),
                    zk::Error::NoAuth,
                ));
            }
            Err(e) => return Err(Error::zk("create (parents)", &absolute(client, path), e)),
        }
    }
}

/// The shallowest node of `path` (itself or an ancestor) that does not exist: the one `mkdir`
/// tried to create last. `path` itself if that cannot be read.
async fn first_missing<'a>(client: &zk::Client, path: &'a str) -> &'a str {
    let ends = path.match_indices('/').skip(1).map(|(i, _)| i);
    for end in ends.chain([path.len()]) {
        if let Ok(None) = client.check_stat(&path[..end]).await {
            return &path[..end];
        }
    }
    path
}

/// Creates the chroot of `client` (and its ancestors), through a client on the same session
/// that is not chrooted. Says so in the log: someone deleted it.
async fn create_chroot(client: &zk::Client, acl: NodeAcl) -> Result<()> {
    let chroot = client.path().to_owned();
    // "/" is always a valid root: `chroot` cannot refuse it.
    let root = client.clone().chroot("/").unwrap_or_else(|same| same);
    let mut attempts = 0;
    loop {
        match root.mkdir(&chroot, &super::persistent(acl)).await {
            Ok(()) => {
                tracing::warn!(
                    %chroot,
                    "the chroot {chroot} of the ZooKeeper connect string was missing (deleted?); created it again"
                );
                return Ok(());
            }
            Err(zk::Error::NodeExists) => return Ok(()),
            Err(e) if unanswered(&e) && attempts < MAX_LOST_REPLIES => {
                attempts += 1;
                wait_reconnected(client).await?;
            }
            Err(e) => {
                return Err(Error::zk(
                    "create (the connect string's chroot)",
                    &chroot,
                    e,
                ));
            }
        }
    }
}

/// `path` as ZooKeeper names it: under the chroot of `client`, if it has one (`/registry` of
/// `host:port/app` is `/app/registry`), so a line names the node an operator can look up.
pub(crate) fn absolute(client: &zk::Client, path: &str) -> String {
    match client.path() {
        "/" => path.to_owned(),
        chroot => format!("{chroot}{path}"),
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
            ("/a\u{e000}", "ZooKeeper refuses"),
            ("/a\u{ffff}", "ZooKeeper refuses"),
            ("/a\u{1f600}", "ZooKeeper refuses"),
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
