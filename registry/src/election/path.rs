//! Which paths can be an election's master node: any path [`validate_path`] accepts except one
//! ending in the name of a node an election keeps beside its master node (`<path>.epoch`,
//! `<path>.participants`, `<path>.jobs`, `<path>.floor`). Contending at such a path would make
//! the master node another election's companion, whose data and `mzxid` mean something else:
//! it is refused before anything is created.

use crate::error::{Error, Result};
use crate::plumbing::path::validate_path;

/// The suffixes of the nodes an election keeps beside its master node `<path>`: the companion
/// (the epoch), the participant nodes' parent, and the master-only jobs' records and floors.
pub const RESERVED_SUFFIXES: &[&str] = &[
    super::COMPANION_SUFFIX,
    super::PARTICIPANTS_SUFFIX,
    ".jobs",
    ".floor",
];

/// `path` if it can be an election's master node: a valid znode path whose name does not end
/// in one of the [`RESERVED_SUFFIXES`].
///
/// ```
/// use zoorpc_registry::election::validate_election_path;
/// assert!(validate_election_path("/soa/master/services/HelloService:1.0.0").is_ok());
/// let err = validate_election_path("/soa/master/services/HelloService:1.0.0.epoch").unwrap_err();
/// assert!(err.to_string().contains("the election's own nodes"), "{err}");
/// for bad in ["/a.participants", "/a.jobs", "/a.floor", "/a/", "a"] {
///     assert!(validate_election_path(bad).is_err(), "{bad}");
/// }
/// ```
pub fn validate_election_path(path: &str) -> Result<&str> {
    let path = validate_path(path)?;
    let name = path.rsplit('/').next().unwrap_or(path);
    if RESERVED_SUFFIXES
        .iter()
        .any(|suffix| name.ends_with(suffix))
    {
        return Err(Error::InvalidPath {
            path: crate::error::excerpt(path),
            reason: "an election path must not end in .epoch, .participants, .jobs or .floor, \
                     the names of the election's own nodes beside its master node: give the \
                     master node's path (e.g. /soa/master/services/HelloService:1.0.0)",
        });
    }
    Ok(path)
}
