//! Shared test actors.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::sync::{Arc, Mutex};

use actix::prelude::*;
use tokio::sync::oneshot;

/// Records the messages it handles; can be told to block until released.
#[derive(Default)]
pub struct Recorder {
    pub seen: Arc<Mutex<Vec<String>>>,
}

impl Actor for Recorder {
    type Context = Context<Self>;
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Note(pub String);

impl Handler<Note> for Recorder {
    type Result = ();
    fn handle(&mut self, Note(s): Note, _: &mut Context<Self>) {
        self.seen.lock().expect("not poisoned").push(s);
    }
}

/// Blocks the actor's mailbox (via `ctx.wait`) until the sender is fired or dropped.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Block(pub oneshot::Receiver<()>);

impl Handler<Block> for Recorder {
    type Result = ();
    fn handle(&mut self, Block(rx): Block, ctx: &mut Context<Self>) {
        ctx.wait(actix::fut::wrap_future(async move {
            let _ = rx.await;
        }));
    }
}

/// Lets the runtime run for a while (other tasks, timers).
pub async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}
