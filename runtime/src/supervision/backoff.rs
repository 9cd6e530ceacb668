use std::time::Duration;

/// Exponential backoff with jitter between restarts.
///
/// The n-th restart in the current window waits `initial * multiplier^(n-1)`, capped at
/// `max`, then scaled by a random factor in `[1 - jitter, 1 + jitter]` so that many actors
/// failing together do not restart in lockstep.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Wait before the first restart.
    pub initial: Duration,
    /// Longest wait.
    pub max: Duration,
    /// Growth per restart (at least 1).
    pub multiplier: f64,
    /// Relative jitter, from 0 (none) to 1.
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_secs(5),
            multiplier: 2.0,
            jitter: 0.2,
        }
    }
}

impl Backoff {
    /// No wait at all.
    pub const NONE: Backoff = Backoff {
        initial: Duration::ZERO,
        max: Duration::ZERO,
        multiplier: 1.0,
        jitter: 0.0,
    };

    /// The wait before restart number `attempt` (1-based) in the current window.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(64) as i32;
        let base = self.initial.as_secs_f64() * self.multiplier.max(1.0).powi(exponent);
        let capped = base.min(self.max.as_secs_f64());
        let jitter = self.jitter.clamp(0.0, 1.0);
        let factor = 1.0 + jitter * (2.0 * fastrand::f64() - 1.0);
        Duration::from_secs_f64((capped * factor).max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_within_jitter_and_caps() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(1000),
            multiplier: 2.0,
            jitter: 0.1,
        };
        for (attempt, nominal) in [
            (1, 100.0),
            (2, 200.0),
            (3, 400.0),
            (4, 800.0),
            (5, 1000.0),
            (30, 1000.0),
        ] {
            for _ in 0..50 {
                let ms = b.delay(attempt).as_secs_f64() * 1000.0;
                assert!(
                    (nominal * 0.9 - 1e-6..=nominal * 1.1 + 1e-6).contains(&ms),
                    "{attempt}: {ms}"
                );
            }
        }
        assert_eq!(Backoff::NONE.delay(7), Duration::ZERO);
    }
}
