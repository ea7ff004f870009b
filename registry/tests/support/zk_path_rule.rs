//! ZooKeeper's path rule as a test oracle, shared by the property tests
//! (`registry/tests/parsers.rs`) and the fuzz target (`fuzz/fuzz_targets/paths_and_addresses.rs`).

/// ZooKeeper's own rule (`org.apache.zookeeper.common.PathUtils.validatePath`): absolute, no
/// trailing `/`, no empty, `.` or `..` segment, no NUL, no characters in U+0001–U+001F,
/// U+007F–U+009F, U+D800–U+F8FF or U+FFF0–U+FFFF, checked on Java's UTF-16 code units, so
/// every character beyond U+FFFF (a surrogate pair) is refused too (`tests/registry/bad_input.rs` checks
/// this rule against the real server).
pub fn zookeeper_accepts(path: &str) -> bool {
    path.starts_with('/')
        && path.len() > 1
        && !path.ends_with('/')
        && path[1..]
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..")
        && !path.chars().any(|c| {
            let c = c as u32;
            c <= 0x1f || (0x7f..=0x9f).contains(&c) || (0xd800..=0xf8ff).contains(&c) || c >= 0xfff0
        })
}
