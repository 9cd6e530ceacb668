//! Integration test of troupe-runtime.
use std::process::Command;
use std::time::Duration;

use troupe_runtime::resource::ResourceMonitor;

#[tokio::test]
async fn memory_and_cpu_of_a_child_are_sampled_until_it_exits() {
    let monitor = ResourceMonitor::start(Duration::from_millis(20)).unwrap();
    // A child that allocates and touches ~64 MiB, then sleeps.
    let mut child = Command::new("python3")
        .args(["-c", "b = bytearray(64 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1\nimport time; time.sleep(30)"])
        .spawn()
        .expect("python3 runs");
    let watch = monitor.watch(child.id());
    let mut rx = watch.receiver();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let rss = loop {
        tokio::time::timeout_at(deadline, rx.changed())
            .await
            .expect("samples arrive")
            .unwrap();
        let sample = *rx.borrow();
        if let Some(sample) = sample
            && sample.rss_bytes > 60 << 20
        {
            break sample.rss_bytes;
        }
    };
    assert!(rss < 1 << 30, "rss {rss}");
    child.kill().unwrap();
    child.wait().unwrap();
    // Once the process is gone the watch reports None and closes.
    let gone = tokio::time::timeout(Duration::from_secs(5), rx.wait_for(Option::is_none)).await;
    assert!(gone.is_ok(), "watch notices the exit");
}
