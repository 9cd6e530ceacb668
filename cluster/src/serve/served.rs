//! The extensions a serving host serves, each with the caller it runs now (an extension
//! stopped and started again through the lifecycle service has a new one), and the
//! lifecycle service's answers.

use std::sync::{Arc, RwLock};

use indexmap::IndexMap;
use troupe_runtime::Caller;
use zenoh::query::Query;

use super::{read_payload, send};
use crate::admin::{ExtensionHealth, Lifecycle, LifecycleError, LifecycleReply, LifecycleRequest};
use crate::frame::FrameError;

/// The served extensions, in manifest order, and what stops and starts them.
pub(super) struct Served {
    callers: IndexMap<String, RwLock<Caller>>,
    lifecycle: Option<Arc<dyn Lifecycle>>,
    /// One stop or start at a time, so that each sees the one before it finished.
    busy: tokio::sync::Mutex<()>,
}

impl Served {
    pub(super) fn new(
        callers: IndexMap<String, Caller>,
        lifecycle: Option<Arc<dyn Lifecycle>>,
    ) -> Served {
        Served {
            callers: callers
                .into_iter()
                .map(|(name, caller)| (name, RwLock::new(caller)))
                .collect(),
            lifecycle,
            busy: tokio::sync::Mutex::new(()),
        }
    }

    /// The names, in manifest order.
    pub(super) fn names(&self) -> impl Iterator<Item = &String> {
        self.callers.keys()
    }

    /// The caller extension `name` runs behind now.
    pub(super) fn caller(&self, name: &str) -> Option<Caller> {
        let slot = self.callers.get(name)?;
        Some(slot.read().unwrap_or_else(|p| p.into_inner()).clone())
    }

    /// Each extension's state now.
    pub(super) fn health(&self) -> Vec<ExtensionHealth> {
        self.callers
            .keys()
            .map(|name| ExtensionHealth {
                name: name.clone(),
                up: self.caller(name).is_some_and(|caller| !caller.is_closed()),
            })
            .collect()
    }

    /// Stops or starts what `request` names.
    async fn act(&self, request: LifecycleRequest) -> LifecycleReply {
        let name = match &request {
            LifecycleRequest::Stop(name) | LifecycleRequest::Start(name) => name,
        };
        let Some(slot) = self.callers.get(name) else {
            return Err(LifecycleError::NotServed);
        };
        let lifecycle = self.lifecycle.as_ref().ok_or(LifecycleError::Unavailable)?;
        let _one_at_a_time = self.busy.lock().await;
        let running = self.caller(name).is_some_and(|caller| !caller.is_closed());
        match request {
            LifecycleRequest::Stop(_) if !running => Err(LifecycleError::NotRunning),
            LifecycleRequest::Stop(_) => lifecycle.stop(name).await,
            LifecycleRequest::Start(_) if running => Err(LifecycleError::Running),
            LifecycleRequest::Start(_) => {
                let caller = lifecycle.start(name).await?;
                *slot.write().unwrap_or_else(|p| p.into_inner()) = caller;
                Ok(())
            }
        }
    }
}

/// Answers one lifecycle query (a malformed one gets no answer: its sender times out).
pub(super) async fn answer_lifecycle(query: Query, served: Arc<Served>) {
    let request = read_payload(&query).and_then(|bytes| {
        troupe_value::decode::<LifecycleRequest>(&bytes).map_err(FrameError::from)
    });
    let request = match request {
        Ok(request) => request,
        Err(error) => {
            tracing::debug!(%error, "bad lifecycle query");
            return;
        }
    };
    tracing::info!(?request, "lifecycle request");
    let answer = served.act(request).await;
    match troupe_value::encode(&answer) {
        Ok(bytes) => send(&query, bytes).await,
        Err(error) => tracing::warn!(%error, "cannot encode a lifecycle reply"),
    }
}
