//! The metrics endpoint: the registry in the Prometheus text format at `/metrics`, 404
//! elsewhere, and a scraper that trickles its request cannot hold it past its deadline.

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use troupe_runtime::metrics::{self, Metrics};

fn get(address: std::net::SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn counters_are_scraped_and_a_trickling_scraper_is_cut_off() {
    let node = Metrics::global().node("scraped", "n1");
    node.items_in.inc_by(3);
    node.seconds.observe(0.002);
    let server = metrics::serve("127.0.0.1:0".parse().unwrap()).unwrap();
    let address = server.address();

    let text = get(address, "/metrics");
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(text.contains("text/plain; version=0.0.4"), "{text}");
    assert!(
        text.contains("troupe_node_items_in_total{pipeline=\"scraped\",node=\"n1\"} 3"),
        "{text}"
    );
    assert!(
        text.contains("troupe_node_process_seconds_bucket{"),
        "{text}"
    );
    assert!(get(address, "/other").starts_with("HTTP/1.1 404"));

    // A byte every 500 ms, never ending its request line.
    let mut slow = TcpStream::connect(address).unwrap();
    let trickle = std::thread::spawn(move || {
        for _ in 0..20 {
            if slow.write_all(b"G").is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    });
    std::thread::sleep(Duration::from_millis(100));
    let began = Instant::now();
    let text = get(address, "/metrics");
    assert!(text.starts_with("HTTP/1.1 200 OK"));
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "the next scrape waited {:?}",
        began.elapsed()
    );
    drop(server);
    trickle.join().unwrap();
}
