//! How both ends of a connection wait for their next message: poll briefly, then sleep.

/// Environment variable setting how long (microseconds) a receiving thread polls after each
/// message before it sleeps in the kernel; `0` turns polling off. Default: [`DEFAULT_SPIN`].
pub const SPIN_ENV: &str = "TROUPE_SPIN_US";

/// How long a receiver polls before it sleeps, unless [`SPIN_ENV`] says otherwise.
///
/// Waking a sleeping thread costs 20-70 us on small virtual machines when the scheduler
/// puts it on an idle core: several times a whole round trip. A receiver that polls briefly
/// after each message (yielding its core between polls) is still awake when the next
/// message of a burst comes, which takes most wake-ups out of back-to-back calls; when the
/// messages stop it sleeps after this long.
pub const DEFAULT_SPIN: std::time::Duration = std::time::Duration::from_micros(50);

/// Polls `try_once` (yielding the core between polls) for up to [`spin`], then calls
/// `block`: how both ends of a connection wait for their next message. `try_once` gives
/// `None` while there is nothing yet.
pub fn poll_then_block<T>(mut try_once: impl FnMut() -> Option<T>, block: impl FnOnce() -> T) -> T {
    let until = std::time::Instant::now() + spin();
    loop {
        if let Some(got) = try_once() {
            return got;
        }
        if std::time::Instant::now() >= until {
            return block();
        }
        std::thread::yield_now();
    }
}

/// The polling time of this process: [`SPIN_ENV`] if set to a number, else [`DEFAULT_SPIN`].
pub fn spin() -> std::time::Duration {
    static SPIN: std::sync::OnceLock<std::time::Duration> = std::sync::OnceLock::new();
    *SPIN.get_or_init(|| {
        std::env::var(SPIN_ENV)
            .ok()
            .and_then(|us| us.trim().parse().ok())
            .map_or(DEFAULT_SPIN, std::time::Duration::from_micros)
    })
}
