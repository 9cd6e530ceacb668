//! The clients of a serving host, counted by their liveliness tokens
//! (`troupe/host/NAME/client/ZID`): what `troupe serve --owner-grace-ms` watches.

use std::sync::Mutex;

use tokio::sync::watch;
use zenoh::pubsub::Subscriber;

use crate::error::ClusterError;
use crate::keys;
use crate::runtime::OnCluster;
use crate::session::SharedSession;

/// The most client tokens a host counts.
const MAX_CLIENTS: usize = 65_536;

/// Watches the client tokens of host `host`, counting them into `count`.
pub(super) async fn watch(
    session: SharedSession,
    host: String,
    count: watch::Sender<usize>,
) -> Result<OnCluster<Subscriber<()>>, ClusterError> {
    let key = keys::client_tokens(&host);
    let present = Mutex::new(std::collections::HashSet::new());
    let subscriber = session
        .get()
        .liveliness()
        .declare_subscriber(&key)
        .history(true)
        .callback(move |sample| {
            let mut present = present.lock().unwrap_or_else(|p| p.into_inner());
            let client = sample.key_expr().as_str().to_owned();
            if sample.kind() == zenoh::sample::SampleKind::Put {
                // Bounded whatever clients declare: past it, more are not counted.
                if present.len() < MAX_CLIENTS {
                    present.insert(client);
                }
            } else {
                present.remove(&client);
            }
            count.send_replace(present.len());
        })
        .await
        .map_err(ClusterError::declare(
            &host,
            format!("liveliness subscriber {key}"),
        ))?;
    Ok(OnCluster::new(subscriber))
}
