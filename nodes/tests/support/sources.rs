//! Reading sources to the end, and feeding them through a FIFO.

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use troupe_nodes::{Emitter, Source, SourceState};
use troupe_value::Audio;

/// Every chunk `source` gives, in order.
pub(crate) fn read_all(source: &mut dyn Source) -> Vec<Audio> {
    let mut out = Emitter::new();
    while source.pull(&mut out).expect("pull") == SourceState::More {}
    out.drain()
        .map(|v| v.as_audio().expect("audio").clone())
        .collect()
}

/// The f32 samples of `chunks`, concatenated.
pub(crate) fn samples(chunks: &[Audio]) -> Vec<f32> {
    chunks
        .iter()
        .flat_map(|c| c.samples().to_vec::<f32>().expect("f32"))
        .collect()
}

/// Makes a FIFO called `name` in `dir`.
pub(crate) fn mkfifo(dir: &Path, name: &str) -> PathBuf {
    let fifo = dir.join(name);
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success(), "mkfifo {}", fifo.display());
    fifo
}

/// Writes `bytes` into `fifo` on a thread (opening it waits for a reader), then closes it.
pub(crate) fn feed(fifo: &Path, bytes: Vec<u8>) -> JoinHandle<()> {
    let fifo = fifo.to_owned();
    std::thread::spawn(move || std::fs::write(&fifo, bytes).expect("write the fifo"))
}
