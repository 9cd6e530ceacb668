//! Restarting a crashed node: a panic is caught in the node's actor, the runtime's
//! [`Supervisor`] (the same one local actors and bridged extensions run under) decides and
//! reports, and a factory makes the next instance.

use std::panic::{AssertUnwindSafe, catch_unwind};

use troupe_nodes::{Node, NodeError};
use troupe_runtime::supervision::{Decision, ExitReason, RestartSpec, Supervisor};

/// Makes a fresh instance of a node: once when the pipeline is built, and again after every
/// crash its [`RestartSpec`] allows.
pub type NodeFactory = Box<dyn FnMut() -> Result<Box<dyn Node>, NodeError> + Send>;

/// A node's restart policy and the factory for its next instance.
pub(crate) struct Restarter {
    factory: NodeFactory,
    supervisor: Supervisor,
}

impl Restarter {
    /// Restarts node `id` per `spec`, making instances with `factory`.
    pub(crate) fn new(id: &str, spec: RestartSpec, factory: NodeFactory) -> Restarter {
        Restarter {
            factory,
            supervisor: Supervisor::new(id, spec),
        }
    }

    /// Makes an instance; a panicking factory is an error, not a crash of the caller.
    pub(crate) fn make(&mut self) -> Result<Box<dyn Node>, MakeError> {
        self.supervisor.starting();
        match catch_panic(&mut self.factory) {
            Ok(Ok(node)) => {
                self.supervisor.running();
                Ok(node)
            }
            Ok(Err(error)) => Err(MakeError::Failed(error)),
            Err(message) => Err(MakeError::Panicked(message)),
        }
    }

    /// What follows a crash whose panic said `message`.
    pub(crate) fn on_crash(&mut self, message: String) -> Decision {
        self.supervisor.exited(ExitReason::Panicked(message))
    }

    /// The node ended for good (its input ended, or the run failed).
    pub(crate) fn finish(&mut self) {
        self.supervisor.finish(ExitReason::Stopped);
    }
}

/// Why a factory gave no node.
#[derive(Debug)]
pub(crate) enum MakeError {
    /// It returned an error.
    Failed(NodeError),
    /// It panicked, with this message.
    Panicked(String),
}

/// Runs `f`, turning a panic into its message.
pub(crate) fn catch_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic with a non-text payload".to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use troupe_runtime::supervision::{Backoff, RestartLimit, RestartPolicy};

    #[test]
    fn panics_become_messages_and_the_limit_holds() {
        assert_eq!(catch_panic(|| 7), Ok(7));
        assert_eq!(
            catch_panic(|| -> i32 { panic!("boom {}", 1) }),
            Err("boom 1".to_owned())
        );
        let spec = RestartSpec {
            policy: RestartPolicy::Permanent,
            limit: RestartLimit {
                max_restarts: 1,
                within: std::time::Duration::from_secs(60),
            },
            backoff: Backoff::NONE,
        };
        let mut restarter = Restarter::new("n", spec, Box::new(|| panic!("no node today")));
        assert!(matches!(restarter.make(), Err(MakeError::Panicked(m)) if m == "no node today"));
        assert!(matches!(
            restarter.on_crash("a".into()),
            Decision::Restart { attempt: 1, .. }
        ));
        assert!(matches!(
            restarter.on_crash("b".into()),
            Decision::GiveUp(_)
        ));
    }
}
