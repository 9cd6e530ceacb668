//! The key expressions troupe declares, and the names that go into them.
//!
//! - `troupe/host/NAME`: a serving host's liveliness token (present while it runs).
//! - `troupe/host/NAME/admin`: its admin queryable ([`crate::admin`]).
//! - `troupe/host/NAME/lifecycle`: its lifecycle queryable (stop/start a served extension;
//!   with a users file, only its operators may query it).
//! - `troupe/host/NAME/ext/EXT/call`: one queryable per extension it serves.
//! - `troupe/host/NAME/node/PIPELINE/NODE/call`: one queryable per pipeline node it runs for
//!   others (the batches of a cross-host edge, `crate::edge`).
//! - `troupe/host/NAME/control`: what callers say about their calls (credit, cancel).
//! - `troupe/host/NAME/client/ZID`: a client's liveliness token, present while it is
//!   connected (what a serving host's owner grace period watches).

use thiserror::Error;

/// A host or extension name that cannot go into a key expression.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{kind} name {name:?}: use letters, digits, `_`, `-` and `.`")]
pub struct BadName {
    /// `host`, `extension`, `pipeline` or `node`.
    pub kind: &'static str,
    /// The name given.
    pub name: String,
}

/// Checks that `name` (of a `kind`: `host`, `extension`) is one path segment with no wildcard.
pub(crate) fn check_name(kind: &'static str, name: &str) -> Result<(), BadName> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(BadName {
            kind,
            name: name.to_owned(),
        })
    }
}

/// The liveliness token of host `host`.
pub(crate) fn host_token(host: &str) -> String {
    format!("troupe/host/{host}")
}

/// The admin queryable of host `host`.
pub(crate) fn admin(host: &str) -> String {
    format!("troupe/host/{host}/admin")
}

/// The lifecycle queryable of host `host`.
pub(crate) fn lifecycle(host: &str) -> String {
    format!("troupe/host/{host}/lifecycle")
}

/// The queryable serving calls of extension `extension` on host `host`.
pub(crate) fn extension_call(host: &str, extension: &str) -> String {
    format!("troupe/host/{host}/ext/{extension}/call")
}

/// The queryable serving the batches of node `node` of pipeline `pipeline` on host `host`.
pub(crate) fn node_call(host: &str, pipeline: &str, node: &str) -> String {
    format!("troupe/host/{host}/node/{pipeline}/{node}/call")
}

/// How a served node is named in a hello: `PIPELINE/NODE`.
pub(crate) fn node_name(pipeline: &str, node: &str) -> String {
    format!("{pipeline}/{node}")
}

/// Where callers of host `host` send [`crate::frame::Control`] messages.
pub(crate) fn control(host: &str) -> String {
    format!("troupe/host/{host}/control")
}

/// The liveliness token of client session `zid` of host `host`.
pub(crate) fn client_token(host: &str, zid: &str) -> String {
    format!("troupe/host/{host}/client/{zid}")
}

/// Every client token of host `host`.
pub(crate) fn client_tokens(host: &str) -> String {
    format!("troupe/host/{host}/client/*")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_single_segments_without_wildcards() {
        assert!(check_name("host", "gpu-1.lab").is_ok());
        for bad in ["", "a/b", "*", "a**", "$x", "a b", "a?b"] {
            assert!(check_name("host", bad).is_err(), "{bad}");
        }
        assert_eq!(extension_call("h", "asr"), "troupe/host/h/ext/asr/call");
    }
}
