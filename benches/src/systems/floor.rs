//! What every floor measures, written once over [`Link`]: a child process that echoes
//! fixed-size frames, reached through one transport (Unix socket, ipc-channel).
//!
//! Each function opens what it needs (spawns and warms a child) and returns a
//! [`Sampler`] that takes more samples each time the scenario asks.
//! A frame whose first byte is [`CRASH`] makes the child exit at once with
//! [`CRASH_EXIT`](super::spawn::CRASH_EXIT): the restart measurement's crash.

use std::time::Instant;

use super::{Sampler, SystemError};

/// The first byte of a frame that asks the child to crash.
pub(crate) const CRASH: u8 = b'!';

/// The byte that fills echoed frames (never [`CRASH`]).
const FILL: u8 = 0xA5;

/// One connected floor child; dropping it kills and reaps the child.
pub(crate) trait Link: Sized + 'static {
    /// The system's name in rows.
    const SYSTEM: &'static str;
    /// Spawns a child that echoes frames of `frame` bytes, and connects to it.
    fn spawn(frame: usize) -> Result<Self, SystemError>;
    /// Sends one frame.
    fn send(&mut self, frame: &[u8]) -> Result<(), SystemError>;
    /// Receives one frame (an error once the child is gone).
    fn recv(&mut self) -> Result<(), SystemError>;
}

fn round_trip<L: Link>(link: &mut L, frame: &[u8]) -> Result<(), SystemError> {
    link.send(frame)?;
    link.recv()
}

/// A new link and its payload, after `warmup` untimed round trips.
fn warm_link<L: Link>(frame: usize, warmup: usize) -> Result<(L, Vec<u8>), SystemError> {
    let payload = vec![FILL; frame];
    let mut link = L::spawn(frame)?;
    for _ in 0..warmup {
        round_trip(&mut link, &payload)?;
    }
    Ok((link, payload))
}

/// Times `sample` `n` times.
fn timed(
    n: usize,
    mut sample: impl FnMut() -> Result<(), SystemError>,
) -> Result<Vec<u64>, SystemError> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        sample()?;
        samples.push(start.elapsed().as_nanos() as u64);
    }
    Ok(samples)
}

/// Samples of `hops` sequential round trips each, after `warmup` untimed ones: a call
/// round trip (`hops` 1) or the message path of a nested chain (`hops` = depth).
pub(crate) fn sequential<L: Link>(
    frame: usize,
    hops: usize,
    warmup: usize,
) -> Result<Sampler, SystemError> {
    let (mut link, payload) = warm_link::<L>(frame, warmup)?;
    Ok(Box::new(move |n| {
        timed(n, || {
            (0..hops).try_for_each(|_| round_trip(&mut link, &payload))
        })
    }))
}

/// Samples of nanoseconds per call, each from a run of `calls` calls with up to
/// `in_flight` outstanding: frames are sent ahead, and each reply lets one more go.
pub(crate) fn pipelined<L: Link>(
    frame: usize,
    in_flight: usize,
    calls: usize,
) -> Result<Sampler, SystemError> {
    let (mut link, payload) = warm_link::<L>(frame, calls.min(1000))?;
    let calls = calls.max(1);
    Ok(Box::new(move |n| {
        let mut samples = timed(n, || {
            let mut sent = 0;
            while sent < in_flight.min(calls) {
                link.send(&payload)?;
                sent += 1;
            }
            for _ in 0..calls {
                link.recv()?;
                if sent < calls {
                    link.send(&payload)?;
                    sent += 1;
                }
            }
            Ok(())
        })?;
        samples.iter_mut().for_each(|s| *s /= calls as u64);
        Ok(samples)
    }))
}

/// Samples of spawn to first answered call (after one untimed start that warms the page
/// cache).
pub(crate) fn cold_starts<L: Link>(frame: usize) -> Result<Sampler, SystemError> {
    let payload = vec![FILL; frame];
    let start = move || L::spawn(frame).and_then(|mut link| round_trip(&mut link, &payload));
    start()?;
    Ok(Box::new(move |n| timed(n, &start)))
}

/// Samples of crash to first answered call: a crash frame is sent, the dead child is
/// noticed through the transport and reaped, a new one is spawned and answers a call.
pub(crate) fn restarts<L: Link>(frame: usize) -> Result<Sampler, SystemError> {
    let (first, payload) = warm_link::<L>(frame, 1)?;
    let mut crash = payload.clone();
    crash[0] = CRASH;
    let mut link = Some(first);
    Ok(Box::new(move |n| {
        timed(n, || {
            let dying = link.as_mut().ok_or_else(|| {
                SystemError::Unsupported("no child left after a failed restart".to_owned())
            })?;
            dying.send(&crash)?;
            if dying.recv().is_ok() {
                return Err(SystemError::Unsupported(
                    "the child answered a crash frame".to_owned(),
                ));
            }
            link = None; // kills and reaps the dead child before its replacement starts
            round_trip(link.insert(L::spawn(frame)?), &payload)
        })
    }))
}
