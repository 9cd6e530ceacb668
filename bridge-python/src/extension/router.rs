//! Where calls from an extension go: the host, singletons, other extensions.

use troupe_protocol::Target;
use troupe_runtime::Caller;
use troupe_value::CallError;

/// Resolves a call an extension makes to the actor that serves it, applying grants.
///
/// The extension host implements it from its registry and the manifest's grants; a refusal
/// is [`CallError::PermissionDenied`] and reaches the Python caller as
/// `troupe.PermissionDeniedError`.
pub trait Router: Send + Sync + 'static {
    /// The actor that serves `from`'s call to `target`, or why `from` may not call it.
    fn route(&self, from: &str, target: &Target) -> Result<Caller, CallError>;
}

/// A router that refuses every call: for extensions that call nobody.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRoutes;

impl Router for NoRoutes {
    fn route(&self, from: &str, target: &Target) -> Result<Caller, CallError> {
        Err(CallError::PermissionDenied {
            caller: from.to_owned(),
            target: target.to_string(),
        })
    }
}
