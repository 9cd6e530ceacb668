//! Metrics of the process's pipeline nodes and extensions, in the Prometheus text format.
//!
//! One process-wide registry ([`Metrics::global`]) holds, labelled by pipeline and node, or
//! by extension:
//!
//! | metric | kind | what |
//! |---|---|---|
//! | `troupe_node_items_in_total` | counter | inputs a node took |
//! | `troupe_node_items_out_total` | counter | outputs it sent downstream |
//! | `troupe_node_errors_total` | counter | inputs that failed (skipped or fatal) |
//! | `troupe_node_restarts_total` | counter | restarts after a panic |
//! | `troupe_node_backlog` | gauge | inputs taken in and not processed yet |
//! | `troupe_node_process_seconds` | histogram | time per input, until its last output |
//! | `troupe_edge_drops_total` | counter | items an edge's drop policy dropped |
//! | `troupe_extension_calls_total` | counter | calls answered, by `outcome` |
//! | `troupe_extension_call_seconds` | histogram | call latency, as its caller saw it |
//! | `troupe_extension_restarts_total` | counter | restarts of its process |
//! | `troupe_extension_calls_waiting` | gauge | calls waiting to be sent |
//! | `troupe_extension_calls_in_flight` | gauge | calls in its process |
//!
//! Counters only grow (several runs of one pipeline add up); a scraper takes rates.
//! [`serve`] answers `GET /metrics` on an address of the caller's choosing
//! (`troupe run --metrics ADDR`).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::histogram::exponential_buckets;
/// The metric types handed out (`prometheus-client`'s).
pub use prometheus_client::metrics::{counter::Counter, gauge::Gauge, histogram::Histogram};
use prometheus_client::registry::Registry;

/// Labels of a node's metrics.
type NodeLabels = Vec<(&'static str, String)>;

/// Latency buckets: 10 µs to ~84 s, doubling.
#[derive(Clone, Copy)]
struct Buckets;

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(exponential_buckets(1e-5, 2.0, 24))
    }
}

/// The process's metric families (see the module docs).
pub struct Metrics {
    registry: Mutex<Registry>,
    node_in: Family<NodeLabels, Counter>,
    node_out: Family<NodeLabels, Counter>,
    node_errors: Family<NodeLabels, Counter>,
    node_restarts: Family<NodeLabels, Counter>,
    node_backlog: Family<NodeLabels, Gauge>,
    node_seconds: Family<NodeLabels, Histogram, Buckets>,
    edge_drops: Family<NodeLabels, Counter>,
    calls: Family<NodeLabels, Counter>,
    call_seconds: Family<NodeLabels, Histogram, Buckets>,
    extension_restarts: Family<NodeLabels, Counter>,
    calls_waiting: Family<NodeLabels, Gauge>,
    calls_in_flight: Family<NodeLabels, Gauge>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    fn new() -> Metrics {
        let metrics = Metrics {
            registry: Mutex::new(Registry::default()),
            node_in: Family::default(),
            node_out: Family::default(),
            node_errors: Family::default(),
            node_restarts: Family::default(),
            node_backlog: Family::default(),
            node_seconds: Family::new_with_constructor(Buckets),
            edge_drops: Family::default(),
            calls: Family::default(),
            call_seconds: Family::new_with_constructor(Buckets),
            extension_restarts: Family::default(),
            calls_waiting: Family::default(),
            calls_in_flight: Family::default(),
        };
        {
            let mut r = metrics.registry.lock().unwrap_or_else(|p| p.into_inner());
            let t = r.sub_registry_with_prefix("troupe");
            t.register(
                "node_items_in",
                "Inputs a node took",
                metrics.node_in.clone(),
            );
            t.register(
                "node_items_out",
                "Outputs a node sent downstream",
                metrics.node_out.clone(),
            );
            t.register(
                "node_errors",
                "Inputs that failed in a node",
                metrics.node_errors.clone(),
            );
            t.register(
                "node_restarts",
                "Restarts of a node after a panic",
                metrics.node_restarts.clone(),
            );
            t.register(
                "node_backlog",
                "Inputs taken in and not processed yet",
                metrics.node_backlog.clone(),
            );
            t.register(
                "node_process_seconds",
                "Time per input, until its last output",
                metrics.node_seconds.clone(),
            );
            t.register(
                "edge_drops",
                "Items an edge's drop policy dropped",
                metrics.edge_drops.clone(),
            );
            t.register(
                "extension_calls",
                "Calls of an extension answered, by outcome",
                metrics.calls.clone(),
            );
            t.register(
                "extension_call_seconds",
                "Latency of an extension's calls, as their callers saw it",
                metrics.call_seconds.clone(),
            );
            t.register(
                "extension_restarts",
                "Restarts of an extension's process",
                metrics.extension_restarts.clone(),
            );
            t.register(
                "extension_calls_waiting",
                "Calls waiting to be sent",
                metrics.calls_waiting.clone(),
            );
            t.register(
                "extension_calls_in_flight",
                "Calls in the extension's process",
                metrics.calls_in_flight.clone(),
            );
        }
        metrics
    }

    /// The process-wide metrics.
    pub fn global() -> &'static Metrics {
        static GLOBAL: OnceLock<Metrics> = OnceLock::new();
        GLOBAL.get_or_init(Metrics::new)
    }

    /// Everything, in the Prometheus text exposition format (version 0.0.4).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        // Writing to a String cannot fail.
        let _ = prometheus_text::encode(&mut text, &registry);
        text
    }

    /// The metrics of node `node` of pipeline `pipeline`.
    pub fn node(&self, pipeline: &str, node: &str) -> NodeMetrics {
        let labels = vec![("pipeline", pipeline.to_owned()), ("node", node.to_owned())];
        NodeMetrics {
            items_in: self.node_in.get_or_create_owned(&labels),
            items_out: self.node_out.get_or_create_owned(&labels),
            errors: self.node_errors.get_or_create_owned(&labels),
            restarts: self.node_restarts.get_or_create_owned(&labels),
            backlog: self.node_backlog.get_or_create_owned(&labels),
            seconds: self.node_seconds.get_or_create_owned(&labels),
        }
    }

    /// The drop counter of the edge `from` -> `to` of pipeline `pipeline`.
    pub fn edge_drops(&self, pipeline: &str, from: &str, to: &str) -> Counter {
        let labels = vec![
            ("pipeline", pipeline.to_owned()),
            ("from", from.to_owned()),
            ("to", to.to_owned()),
        ];
        self.edge_drops.get_or_create_owned(&labels)
    }

    /// The metrics of extension `name`.
    pub fn extension(&self, name: &str) -> ExtensionMetrics {
        let labels = vec![("extension", name.to_owned())];
        let outcome = |outcome: &str| {
            let mut labels = labels.clone();
            labels.push(("outcome", outcome.to_owned()));
            self.calls.get_or_create_owned(&labels)
        };
        ExtensionMetrics {
            ok: outcome("ok"),
            error: outcome("error"),
            timeout: outcome("timeout"),
            cancelled: outcome("cancelled"),
            seconds: self.call_seconds.get_or_create_owned(&labels),
            restarts: self.extension_restarts.get_or_create_owned(&labels),
            waiting: self.calls_waiting.get_or_create_owned(&labels),
            in_flight: self.calls_in_flight.get_or_create_owned(&labels),
        }
    }
}

/// One node's metrics (cheap handles to the registry's atomics).
#[derive(Debug, Clone)]
pub struct NodeMetrics {
    /// Inputs taken.
    pub items_in: Counter,
    /// Outputs sent downstream.
    pub items_out: Counter,
    /// Inputs that failed.
    pub errors: Counter,
    /// Restarts after a panic.
    pub restarts: Counter,
    /// Inputs taken in and not processed yet.
    pub backlog: Gauge,
    /// Time per input.
    pub seconds: Histogram,
}

/// One extension's metrics (cheap handles to the registry's atomics).
#[derive(Debug, Clone)]
pub struct ExtensionMetrics {
    ok: Counter,
    error: Counter,
    timeout: Counter,
    cancelled: Counter,
    seconds: Histogram,
    /// Restarts of its process.
    pub restarts: Counter,
    /// Calls waiting to be sent.
    pub waiting: Gauge,
    /// Calls in its process.
    pub in_flight: Gauge,
}

impl ExtensionMetrics {
    /// Records a call that ended with `result` after `elapsed`.
    pub fn call_ended(&self, result: &crate::CallResult, elapsed: Duration) {
        use troupe_value::CallError;
        let counter = match result {
            Ok(_) => &self.ok,
            Err(CallError::Timeout(_)) => &self.timeout,
            Err(CallError::Cancelled) => &self.cancelled,
            Err(_) => &self.error,
        };
        counter.inc();
        self.seconds.observe(elapsed.as_secs_f64());
    }
}

/// The HTTP endpoint [`serve`] started: answers until dropped.
#[derive(Debug)]
pub struct MetricsServer {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Where it listens (the port chosen when port 0 was asked for).
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wakes the accepting thread, which then sees the flag.
        let _ = TcpStream::connect_timeout(&self.address, Duration::from_millis(200));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Longest request head read before answering.
const MAX_REQUEST_HEAD: u64 = 8 * 1024;
/// How long a scraper may take to send its request or read the answer.
const SCRAPE_IO_TIMEOUT: Duration = Duration::from_secs(2);

/// Serves [`Metrics::global`] over HTTP at `address` (`GET /metrics`; any other path is
/// 404), on a thread of its own, one connection at a time.
///
/// # Errors
/// What binding the address said.
pub fn serve(address: SocketAddr) -> std::io::Result<MetricsServer> {
    let listener = TcpListener::bind(address)?;
    let address = listener.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = stop.clone();
    let thread = std::thread::Builder::new()
        .name("troupe-metrics".into())
        .spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::Acquire) {
                    break;
                }
                if let Ok(stream) = stream
                    && let Err(e) = answer(stream)
                {
                    tracing::debug!(error = %e, "metrics scrape failed");
                }
            }
        })?;
    Ok(MetricsServer {
        address,
        stop,
        thread: Some(thread),
    })
}

/// Reads from a stream until a deadline for all of the reads together: a scraper that sends
/// a byte now and then cannot hold the endpoint past it.
struct Deadline<'a> {
    stream: &'a TcpStream,
    at: std::time::Instant,
}

impl std::io::Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.at.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left))?;
        let mut stream = self.stream;
        std::io::Read::read(&mut stream, buf)
    }
}

/// Reads one request head (bounded in size, and in time as a whole) and answers it.
fn answer(stream: TcpStream) -> std::io::Result<()> {
    stream.set_write_timeout(Some(SCRAPE_IO_TIMEOUT))?;
    let within = Deadline {
        stream: &stream,
        at: std::time::Instant::now() + SCRAPE_IO_TIMEOUT,
    };
    let mut reader = BufReader::new(std::io::Read::take(within, MAX_REQUEST_HEAD));
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // The rest of the head, up to its blank line (or the bound).
    let mut line = String::new();
    while reader.read_line(&mut line)? > 0 && line.trim_end() != "" {
        line.clear();
    }
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next(), parts.next());
    let (status, body) = match (method, path.map(|p| p.split('?').next().unwrap_or(p))) {
        (Some("GET"), Some("/metrics")) => ("200 OK", Metrics::global().encode()),
        (Some("GET"), _) => ("404 Not Found", "not found: try /metrics\n".to_owned()),
        _ => ("405 Method Not Allowed", "GET /metrics\n".to_owned()),
    };
    let mut out = &stream;
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    out.flush()
}
