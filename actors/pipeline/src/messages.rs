//! Messages between node actors, and events to the run monitor.

use actix::Message;
use troupe_value::Value;

use crate::error::PipelineError;
use crate::summary::NodeStats;

/// What travels an edge.
#[derive(Debug, Clone)]
pub(crate) enum Packet {
    /// One item.
    Item(Value),
    /// End of stream from this edge: nothing follows.
    Eos,
}

/// Packets arriving on input `port` of a node (data lane), in order: what one upstream
/// handler emitted on that edge, [`MAX_ITEMS_PER_MESSAGE`] at most.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Data {
    pub(crate) port: usize,
    pub(crate) packets: Vec<Packet>,
}

/// Most packets one [`Data`] message carries: a mailbox of capacity `c` holds at most
/// `c * MAX_ITEMS_PER_MESSAGE` items.
pub(crate) const MAX_ITEMS_PER_MESSAGE: usize = 16;

/// Wake-up: a drop-oldest edge buffer into this node has packets (data lane).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Drain;

/// Barge-in: drop buffered state (control lane).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Interrupt;

/// The run is over: stop the actor (control lane).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Stop;

/// Asks a source actor for its next pull.
#[derive(Message)]
#[rtype(result = "Pulled")]
pub(crate) struct Pull;

/// What a pull gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pulled {
    /// Pull again.
    More,
    /// The source is done (or failed, or the run is over).
    Over,
}

/// What node actors tell the run monitor.
pub(crate) enum Event {
    /// End of stream passed through node `index`; its counters.
    Finished(usize, NodeStats),
    /// The run must end with this error.
    Failed(PipelineError),
    /// Node `index`'s actor is gone before its end of stream; its counters so far.
    Stopped(usize, NodeStats),
}
