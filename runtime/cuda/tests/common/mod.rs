//! Shared by the GPU tests: skipping without a GPU, and an importer in a child process.
//!
//! The child is this very test binary, run with [`CHILD_ENV`] set and only its
//! `child_importer` test selected; it reads commands on stdin and answers on stdout with
//! lines that contain [`MARK`] (libtest may print before them on the same line).

#![allow(dead_code)] // each test file uses a part

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

use troupe_cuda::{
    CudaDevice, CudaError, CudaIpcDescriptor, Exports, Importer, PeerId, Release, device_count,
    driver_available,
};

/// Set in the child's environment.
pub(crate) const CHILD_ENV: &str = "TROUPE_CUDA_TEST_CHILD";
/// Marks the child's answers in its stdout.
pub(crate) const MARK: &str = "@@troupe ";

pub(crate) type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Device 0, or `None` after printing why the test is skipped.
pub(crate) fn gpu_or_skip(test: &str) -> Option<CudaDevice> {
    if !driver_available() {
        println!("{test}: skipped: no CUDA driver");
        return None;
    }
    match device_count() {
        Ok(0) => {
            println!("{test}: skipped: a CUDA driver but no CUDA device");
            None
        }
        Ok(_) => match CudaDevice::open(0) {
            Ok(device) => Some(device),
            Err(e) => panic!("{test}: device 0 is visible but does not open: {e}"),
        },
        Err(CudaError::NoDriver) => {
            println!("{test}: skipped: no CUDA driver");
            None
        }
        Err(e) => {
            println!("{test}: skipped: the CUDA driver does not start: {e}");
            None
        }
    }
}

/// The byte at `index` of a test pattern.
pub(crate) fn pattern(index: usize, seed: u8) -> u8 {
    ((index as u64).wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed
}

/// `len` bytes of the test pattern.
pub(crate) fn pattern_bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| pattern(i, seed)).collect()
}

pub(crate) fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn from_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// How the child checks what it imported.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Check {
    /// Every byte is `pattern(i, seed)`.
    Pattern(u8),
    /// Every byte of the first, middle and last MiB is `seed` (for buffers too large to copy).
    Fill(u8),
}

impl Check {
    fn encode(self) -> String {
        match self {
            Check::Pattern(seed) => format!("pattern {seed}"),
            Check::Fill(seed) => format!("fill {seed}"),
        }
    }
}

/// What the child said about one import.
#[derive(Debug)]
pub(crate) struct Imported {
    /// Microseconds the child spent in `Importer::import` and waiting for its stream.
    pub(crate) import_us: f64,
    /// Mappings open in the child after the import.
    pub(crate) mappings: usize,
}

/// The importer process, seen from the exporter.
pub(crate) struct ChildImporter {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    pub(crate) peer: PeerId,
}

impl ChildImporter {
    pub(crate) fn spawn() -> Result<ChildImporter, Box<dyn std::error::Error>> {
        let mut child = Command::new(std::env::current_exe()?)
            .args([
                "--exact",
                "child_importer",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let peer = PeerId(u64::from(child.id()));
        Ok(ChildImporter {
            child,
            stdin,
            stdout,
            peer,
        })
    }

    fn send(&mut self, line: &str) -> std::io::Result<()> {
        writeln!(self.stdin, "{line}")?;
        self.stdin.flush()
    }

    /// The next answer of the child, without the mark.
    fn answer(&mut self) -> Result<String, Box<dyn std::error::Error>> {
        loop {
            let mut line = String::new();
            if self.stdout.read_line(&mut line)? == 0 {
                return Err("the child importer exited".into());
            }
            if let Some(at) = line.find(MARK) {
                return Ok(line[at + MARK.len()..].trim_end().to_owned());
            }
        }
    }

    /// Sends a descriptor; the child imports it, answers, checks the bytes. With `hold` it
    /// keeps the import until [`ChildImporter::drop_held`], else drops it at once.
    pub(crate) fn import(
        &mut self,
        descriptor: &CudaIpcDescriptor,
        check: Check,
        hold: bool,
    ) -> Result<Imported, Box<dyn std::error::Error>> {
        let verb = if hold { "hold" } else { "import" };
        let hex = to_hex(&postcard::to_stdvec(descriptor)?);
        self.send(&format!("{verb} {} {hex}", check.encode()))?;
        let answer = self.answer()?;
        let fields: Vec<&str> = answer.split(' ').collect();
        match fields.as_slice() {
            ["imported", us, mappings] => Ok(Imported {
                import_us: us.parse()?,
                mappings: mappings.parse()?,
            }),
            _ => Err(format!("child: {answer}").into()),
        }
    }

    /// The result of the child's check of the last import.
    pub(crate) fn checked(&mut self) -> Result<(), Box<dyn std::error::Error>> {
        match self.answer()?.as_str() {
            "checked ok" => Ok(()),
            other => Err(format!("child: {other}").into()),
        }
    }

    /// The releases the child sent after dropping imports.
    pub(crate) fn releases(&mut self) -> Result<Vec<Release>, Box<dyn std::error::Error>> {
        let answer = self.answer()?;
        let hex = answer
            .strip_prefix("released ")
            .ok_or_else(|| format!("child: {answer}"))?;
        let bytes = from_hex(hex).ok_or("bad hex from the child")?;
        Ok(postcard::from_bytes(&bytes)?)
    }

    /// Checks that the child is up and answering (needs no GPU).
    pub(crate) fn ping(&mut self) -> Result<(), Box<dyn std::error::Error>> {
        self.send("ping")?;
        match self.answer()?.as_str() {
            "pong" => Ok(()),
            other => Err(format!("child: {other}").into()),
        }
    }

    /// Tells the child to drop every import it holds.
    pub(crate) fn drop_held(&mut self) -> std::io::Result<()> {
        self.send("drop")
    }

    /// Kills the child (a crash, as the exporter sees it) and waits for it.
    pub(crate) fn kill(mut self) -> std::io::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// Lets the child end normally.
    pub(crate) fn exit(mut self) -> Result<(), Box<dyn std::error::Error>> {
        self.send("exit")?;
        let status = self.child.wait()?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("child importer ended with {status}").into())
        }
    }
}

/// Applies every release of `releases` from `peer`.
pub(crate) fn apply(exports: &mut Exports, peer: PeerId, releases: Vec<Release>) -> TestResult {
    for release in releases {
        exports.release(peer, release)?;
    }
    Ok(())
}

/// The child's side: serves commands from stdin until `exit` or end of input.
pub(crate) fn serve_as_child() -> TestResult {
    let importer = Importer::new();
    let mut devices: Vec<CudaDevice> = Vec::new();
    let mut held = Vec::new();
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let line = line?;
        let fields: Vec<&str> = line.split(' ').collect();
        match fields.as_slice() {
            [verb @ ("import" | "hold"), mode, seed, hex] => {
                let seed: u8 = seed.parse()?;
                let check = match *mode {
                    "pattern" => Check::Pattern(seed),
                    _ => Check::Fill(seed),
                };
                let descriptor: CudaIpcDescriptor =
                    postcard::from_bytes(&from_hex(hex).ok_or("bad hex from the parent")?)?;
                let ordinal = descriptor.device as usize;
                let device = match devices.iter().find(|d| d.ordinal() == ordinal) {
                    Some(device) => device.clone(),
                    None => {
                        let device = CudaDevice::open(ordinal)?;
                        devices.push(device.clone());
                        device
                    }
                };
                let start = Instant::now();
                let imported = importer.import(&descriptor, &device).and_then(|imported| {
                    device.synchronize()?;
                    Ok(imported)
                });
                let import_us = start.elapsed().as_secs_f64() * 1e6;
                let imported = match imported {
                    Ok(imported) => imported,
                    Err(e) => {
                        answer(&format!("error {e}"));
                        answer(&released(&importer)?);
                        continue;
                    }
                };
                answer(&format!(
                    "imported {import_us:.1} {}",
                    importer.open_mappings()
                ));
                answer(&match check_bytes(&imported, check) {
                    Ok(()) => "checked ok".to_owned(),
                    Err(e) => format!("checked {e}"),
                });
                if *verb == "hold" {
                    held.push(imported);
                } else {
                    drop(imported);
                    answer(&released(&importer)?);
                }
            }
            ["drop"] => {
                held.clear();
                answer(&released(&importer)?);
            }
            ["ping"] => answer("pong"),
            ["exit"] => break,
            _ => return Err(format!("unknown command {line:?}").into()),
        }
    }
    Ok(())
}

fn answer(line: &str) {
    println!("{MARK}{line}");
}

fn released(importer: &Importer) -> Result<String, postcard::Error> {
    Ok(format!(
        "released {}",
        to_hex(&postcard::to_stdvec(&importer.take_releases())?)
    ))
}

fn check_bytes(imported: &troupe_cuda::ImportedBuffer, check: Check) -> Result<(), String> {
    match check {
        Check::Pattern(seed) => {
            let bytes = imported.to_host().map_err(|e| e.to_string())?;
            match bytes
                .iter()
                .enumerate()
                .find(|&(i, &b)| b != pattern(i, seed))
            {
                None => Ok(()),
                Some((i, b)) => Err(format!("mismatch at {i}: {b}")),
            }
        }
        Check::Fill(seed) => {
            // Samples through a small device-to-host copy of each window: the buffer may be
            // larger than is reasonable to copy whole.
            let len = imported.len_bytes();
            if len == 0 {
                return Ok(());
            }
            let window = len.min(1 << 20);
            for start in [0, len / 2 - window / 2, len - window] {
                let bytes = sample(imported, start, window).map_err(|e| e.to_string())?;
                if let Some(i) = bytes.iter().position(|&b| b != seed) {
                    return Err(format!("mismatch at {}: {}", start + i as u64, bytes[i]));
                }
            }
            Ok(())
        }
    }
}

/// `len` bytes at `start` of an import, through the driver directly (the crate copies whole
/// buffers only).
fn sample(
    imported: &troupe_cuda::ImportedBuffer,
    start: u64,
    len: u64,
) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    use cudarc::driver::sys;
    let device = imported.device();
    device.context().bind_to_thread()?;
    let mut bytes = vec![0u8; usize::try_from(len)?];
    // SAFETY: the import maps at least `start + len` bytes (start + len <= len_bytes), the
    // context is current, and the stream is synchronised before `bytes` is read.
    let code = unsafe {
        sys::cuMemcpyDtoHAsync_v2(
            bytes.as_mut_ptr().cast(),
            imported.device_ptr() + start,
            bytes.len(),
            device.stream().cu_stream(),
        )
    };
    code.result()?;
    device.synchronize()?;
    Ok(bytes)
}

/// Fills `len` bytes of device memory at `ptr` with `value` on the device's stream.
pub(crate) fn fill(device: &CudaDevice, ptr: u64, len: u64, value: u8) -> TestResult {
    use cudarc::driver::sys;
    device.context().bind_to_thread()?;
    // SAFETY: the caller's buffer holds `len` bytes at `ptr`; the context is current.
    let code = unsafe {
        sys::cuMemsetD8Async(
            ptr,
            value,
            usize::try_from(len)?,
            device.stream().cu_stream(),
        )
    };
    code.result()?;
    Ok(())
}
