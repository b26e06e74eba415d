//! Retry policy of the Humanitec API client: which answers are worth another attempt, how long to
//! wait before it (exponential backoff with full jitter, or the server's `Retry-After`), and when
//! to give up (a total time budget per logical operation).
//!
//! Nothing here sleeps or does I/O: [`Budget::next_wait`] only decides, the caller sleeps. That
//! keeps the policy testable without a clock and the client cancel-safe.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::error::Error;

/// How the client retries a failed request.
///
/// Waits grow exponentially from `initial_backoff` up to `max_backoff`, each one drawn uniformly
/// from zero to that bound ("full jitter"). No new attempt starts once `max_elapsed` has passed
/// since the operation began; the operation then fails with [`Error::GaveUp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    /// Upper bound of the wait after the first failed attempt.
    pub(crate) initial_backoff: Duration,
    /// Largest upper bound of any single wait.
    pub(crate) max_backoff: Duration,
    /// Total time budget of one operation, all attempts and waits included.
    pub(crate) max_elapsed: Duration,
}

impl Default for RetryPolicy {
    /// 250 ms initial backoff, 8 s maximum backoff, 2 minutes in total.
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
            max_elapsed: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// Upper bound of the wait after `failures` failed attempts (1 for the first failure).
    fn backoff_ceiling(&self, failures: u32) -> Duration {
        // Why the cap on the exponent: 2^31 times any sensible initial backoff already exceeds
        // every max_backoff, and it keeps the multiplication far from overflow.
        let factor = 1u32 << failures.saturating_sub(1).min(31);
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// Whether an HTTP status means "try again later" rather than "this request is wrong".
pub(crate) fn is_retryable_status(status: u16) -> bool {
    matches!(status, 429 | 500 | 502 | 503 | 504)
}

/// The shortest time any attempt is allowed to run, however little budget is left.
///
/// Why: cutting the last attempt to a few milliseconds would only manufacture a timeout, and a
/// timed-out write is the worst outcome (the server may have applied it).
const MIN_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// The retry state of one logical operation: when it started, how many attempts it made, and the
/// random source for jitter.
#[derive(Debug)]
pub(crate) struct Budget {
    /// The policy this budget applies.
    policy: RetryPolicy,
    /// When the operation started.
    started: Instant,
    /// Attempts started so far.
    attempts: u32,
    /// Attempts that could not connect at all.
    pub(crate) refused: u32,
    /// Jitter source.
    rng: XorShift,
}

impl Budget {
    /// Starts the budget of a new operation now.
    pub(crate) fn new(policy: RetryPolicy) -> Self {
        Self {
            policy,
            started: Instant::now(),
            attempts: 0,
            refused: 0,
            rng: XorShift::from_clock(),
        }
    }

    /// Records the start of an attempt and returns its number (1 for the first).
    pub(crate) fn begin_attempt(&mut self) -> u32 {
        self.attempts = self.attempts.saturating_add(1);
        self.attempts
    }

    /// Time left before no new attempt may start.
    pub(crate) fn remaining(&self) -> Duration {
        self.policy
            .max_elapsed
            .saturating_sub(self.started.elapsed())
    }

    /// The timeout for the next attempt: the remaining budget, but never more than
    /// `request_timeout` and never less than a few seconds.
    pub(crate) fn attempt_timeout(&self, request_timeout: Duration) -> Duration {
        let floor = request_timeout.min(MIN_ATTEMPT_TIMEOUT);
        self.remaining().clamp(floor, request_timeout)
    }

    /// Decides what happens after a retryable failure: `Ok(wait)` to try again after `wait`, or
    /// [`Error::GaveUp`] carrying `last` when the time budget is spent.
    ///
    /// `retry_after` is the server's `Retry-After`, if it sent one; it replaces the computed
    /// backoff. Every wait is capped by the remaining budget.
    pub(crate) fn next_wait(
        &mut self,
        last: Error,
        retry_after: Option<Duration>,
    ) -> Result<Duration, Error> {
        let elapsed = self.started.elapsed();
        if elapsed >= self.policy.max_elapsed {
            return Err(Error::GaveUp {
                attempts: self.attempts,
                elapsed,
                last: Box::new(last),
            });
        }
        let wait = match retry_after {
            Some(wait) => wait,
            None => self
                .rng
                .below(self.policy.backoff_ceiling(self.attempts.max(1))),
        };
        Ok(wait.min(self.remaining()))
    }
}

/// Parses a `Retry-After` header value: delay-seconds, or an HTTP date in IMF-fixdate form
/// (`Sun, 06 Nov 1994 08:49:37 GMT`), measured from `now`. A date in the past means "now".
///
/// Returns `None` for anything else (the caller then uses its own backoff).
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse::<u64>().ok().map(Duration::from_secs);
    }
    let target = parse_imf_fixdate(value)?;
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(target.saturating_sub(now)))
}

/// Parses an IMF-fixdate (RFC 9110 §5.6.7) into seconds since the Unix epoch.
fn parse_imf_fixdate(value: &str) -> Option<u64> {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mut parts = value.split(' ');
    let day_name = parts.next()?.strip_suffix(',')?;
    let day = parts.next()?;
    let month = parts.next()?;
    let year = parts.next()?;
    let time = parts.next()?;
    if parts.next()? != "GMT" || parts.next().is_some() || !DAYS.contains(&day_name) {
        return None;
    }
    let day = fixed_digits(day, 2)?;
    let month = MONTHS.iter().position(|m| *m == month)? as u64 + 1;
    let year = fixed_digits(year, 4)?;
    let mut hms = time.split(':');
    let hour = fixed_digits(hms.next()?, 2)?;
    let minute = fixed_digits(hms.next()?, 2)?;
    let second = fixed_digits(hms.next()?, 2)?;
    if hms.next().is_some()
        || !(1..=31).contains(&day)
        || year < 1970
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3_600 + minute * 60 + second)
}

/// Parses exactly `len` ASCII digits.
fn fixed_digits(text: &str, len: usize) -> Option<u64> {
    if text.len() != len || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Days from 1970-01-01 to the given date (proleptic Gregorian; `year` ≥ 1970).
///
/// Why this formula: it is Howard Hinnant's `days_from_civil`, which counts from 1 March so that
/// leap days fall at the end of the (shifted) year.
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year / 400;
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    // 719_468 is the day number of 1970-01-01 counted from 0000-03-01.
    (era * 146_097 + day_of_era).saturating_sub(719_468)
}

/// A tiny xorshift64 generator for jitter.
///
/// Why not a crate: jitter only has to decorrelate clients, not be unpredictable, and the crate
/// keeps its dependency list short.
#[derive(Debug)]
struct XorShift(u64);

impl XorShift {
    /// Seeds a generator from the clock and a process-wide counter, so that budgets created in
    /// the same instant still draw different waits.
    fn from_clock() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        // splitmix64 finaliser: spreads the few changing bits of the seed over all 64.
        let mut z = nanos ^ count.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Self(if z == 0 { 0x2545_F491_4F6C_DD1D } else { z })
    }

    /// The next pseudo-random number.
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A duration drawn uniformly from `0..=ceiling` (at nanosecond resolution).
    fn below(&mut self, ceiling: Duration) -> Duration {
        let ceiling = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        if ceiling == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(self.next() % ceiling.saturating_add(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed "now": Sun, 06 Nov 1994 08:49:37 GMT.
    fn now_1994() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(784_111_777)
    }

    #[test]
    fn retry_after_forms() {
        let cases: &[(&str, Option<u64>)] = &[
            ("1", Some(1)),
            (" 120 ", Some(120)),
            ("0", Some(0)),
            ("Sun, 06 Nov 1994 08:49:37 GMT", Some(0)),
            ("Sun, 06 Nov 1994 08:49:47 GMT", Some(10)),
            ("Mon, 07 Nov 1994 08:49:37 GMT", Some(86_400)),
            ("Sat, 05 Nov 1994 08:49:37 GMT", Some(0)),
            ("Thu, 01 Jan 1970 00:00:00 GMT", Some(0)),
            ("Sunday, 06-Nov-94 08:49:37 GMT", None),
            ("Sun Nov  6 08:49:37 1994", None),
            ("Sun, 06 Nov 1994 08:49:37 UTC", None),
            ("Sun, 6 Nov 1994 08:49:37 GMT", None),
            ("Sun, 06 Foo 1994 08:49:37 GMT", None),
            ("Sun, 06 Nov 1994 25:49:37 GMT", None),
            ("-1", None),
            ("1.5", None),
            ("", None),
            ("soon", None),
            ("99999999999999999999999", None),
        ];
        for (text, want) in cases {
            let got = parse_retry_after(text, now_1994());
            assert_eq!(got, want.map(Duration::from_secs), "Retry-After {text:?}");
        }
    }

    #[test]
    fn civil_days_match_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2024, 2, 29), 19_782);
        assert_eq!(
            parse_imf_fixdate("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RetryPolicy::default();
        let ceilings: Vec<u64> = (1..=8)
            .map(|n| policy.backoff_ceiling(n).as_millis() as u64)
            .collect();
        assert_eq!(ceilings, [250, 500, 1000, 2000, 4000, 8000, 8000, 8000]);
        assert_eq!(policy.backoff_ceiling(u32::MAX), policy.max_backoff);
    }

    #[test]
    fn jitter_stays_within_the_ceiling() {
        let mut rng = XorShift::from_clock();
        let ceiling = Duration::from_millis(100);
        let draws: Vec<Duration> = (0..1000).map(|_| rng.below(ceiling)).collect();
        assert!(draws.iter().all(|d| *d <= ceiling));
        // Full jitter: the draws spread over the range instead of clustering at the top.
        assert!(draws.iter().any(|d| *d < ceiling / 2));
        assert!(draws.iter().any(|d| *d > ceiling / 2));
        assert_eq!(rng.below(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn budget_gives_up_with_the_last_error() {
        let policy = RetryPolicy {
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(1),
            max_elapsed: Duration::ZERO,
        };
        let mut budget = Budget::new(policy);
        budget.begin_attempt();
        let last = Error::NotFound {
            what: "thing".into(),
        };
        match budget.next_wait(last, None) {
            Err(Error::GaveUp { attempts, last, .. }) => {
                assert_eq!(attempts, 1);
                assert!(matches!(*last, Error::NotFound { .. }));
            }
            other => panic!("expected GaveUp, got {other:?}"),
        }
    }

    #[test]
    fn retry_after_is_capped_by_the_remaining_budget() {
        let policy = RetryPolicy {
            max_elapsed: Duration::from_secs(2),
            ..RetryPolicy::default()
        };
        let mut budget = Budget::new(policy);
        budget.begin_attempt();
        let last = Error::NotFound { what: "x".into() };
        let wait = budget
            .next_wait(last, Some(Duration::from_secs(3600)))
            .expect("within budget");
        assert!(wait <= Duration::from_secs(2));
        assert!(wait > Duration::from_secs(1));
    }

    #[test]
    fn attempt_timeout_is_bounded() {
        let policy = RetryPolicy {
            max_elapsed: Duration::ZERO,
            ..RetryPolicy::default()
        };
        let budget = Budget::new(policy);
        assert_eq!(
            budget.attempt_timeout(Duration::from_secs(60)),
            MIN_ATTEMPT_TIMEOUT
        );
        assert_eq!(
            budget.attempt_timeout(Duration::from_secs(1)),
            Duration::from_secs(1)
        );
        let roomy = Budget::new(RetryPolicy::default());
        assert_eq!(
            roomy.attempt_timeout(Duration::from_secs(60)),
            Duration::from_secs(60)
        );
    }
}
