//! An extension served by several hosts (`hosts = [...]` in a manifest): each call goes to
//! the first host of the list whose token is there now. A call that fails with
//! [`CallError::HostLost`] is made again on the next live host only when its method is
//! marked idempotent (it may have run on the lost host); other calls stay at most once.

use std::collections::HashSet;
use std::sync::Arc;

use actix::{Actor, Context, Handler, ResponseFuture};
use tokio::sync::watch;
use troupe_runtime::{Call, CallResult, Caller};
use troupe_value::CallError;

/// One host serving the extension: its name, its token watch, its caller.
#[derive(Clone)]
pub(crate) struct Route {
    pub(crate) host: String,
    pub(crate) alive: watch::Receiver<bool>,
    pub(crate) caller: Caller,
}

/// The actor behind a fail-over caller; its handler only picks a route and forwards.
pub(crate) struct Failover {
    pub(crate) routes: Arc<[Route]>,
    pub(crate) idempotent: Arc<HashSet<String>>,
}

impl Actor for Failover {
    type Context = Context<Self>;
}

impl Handler<Call> for Failover {
    type Result = ResponseFuture<CallResult>;

    fn handle(&mut self, mut call: Call, _: &mut Context<Self>) -> Self::Result {
        let routes = self.routes.clone();
        // A streamed call's items may have reached the caller already: never made twice.
        let spare =
            (!call.is_streamed() && self.idempotent.contains(call.method())).then(|| call.clone());
        let abandoned = call.take_abandoned();
        Box::pin(async move {
            let answer = async {
                let mut first = Some(call);
                let mut lost = Vec::new();
                for route in routes.iter().filter(|route| *route.alive.borrow()) {
                    let attempt = match (first.take(), &spare) {
                        (Some(call), _) => call,
                        (None, Some(spare)) => spare.clone(),
                        (None, None) => break,
                    };
                    match route.caller.call(attempt).await {
                        Err(CallError::HostLost { host }) => {
                            tracing::debug!(%host, "host lost");
                            lost.push(host);
                            if spare.is_none() {
                                break;
                            }
                        }
                        answer => return answer,
                    }
                }
                if lost.is_empty() {
                    lost = routes.iter().map(|route| route.host.clone()).collect();
                }
                Err(CallError::HostLost {
                    host: lost.join(", "),
                })
            };
            tokio::select! {
                answer = answer => answer,
                () = abandoned => Err(CallError::Cancelled),
            }
        })
    }
}
