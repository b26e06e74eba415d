//! Pseudo-random numbers and ids without a random-number crate: a xorshift64 generator seeded from the
//! clock (or `--seed`), plus a counter that makes every generated id unique.

use std::time::{SystemTime, UNIX_EPOCH};

/// A xorshift64 generator. Not cryptographic; good enough for ids and fault dice.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator whose sequence is fully determined by `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        // Why: xorshift has a fixed point at 0 and similar seeds give similar early outputs, so the seed
        // is first scrambled with one splitmix64 step, and 0 is replaced by a fixed odd constant.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Rng(if z == 0 { 0x2545_F491_4F6C_DD1D } else { z })
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `[0, 1)`.
    pub(crate) fn next_f64(&mut self) -> f64 {
        // Why: 53 bits are exactly what an f64 mantissa holds, so every value is exact and < 1.
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// An index in `0..n` (`0` when `n` is 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.next_u64() % n as u64) as usize
    }
}

/// A seed from the clock and the process id, for runs without `--seed`.
pub(crate) fn seed_from_clock() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    nanos ^ (u64::from(std::process::id()) << 32)
}

/// Generates ids: random bits for realism, a persisted counter for uniqueness.
#[derive(Clone, Debug)]
pub(crate) struct IdGen {
    /// The random part.
    pub(crate) rng: Rng,
    /// How many ids were generated so far (saved with `--data`, so ids stay unique across restarts).
    pub(crate) counter: u64,
}

impl IdGen {
    /// A UUID-shaped id (version-4 layout). The last group holds the counter, so ids never repeat even
    /// when a fixed seed replays the same random bits.
    pub(crate) fn uuid(&mut self) -> String {
        self.counter += 1;
        let high = self.rng.next_u64();
        let low = self.rng.next_u64();
        let time_low = high >> 32;
        let time_mid = (high >> 16) & 0xffff;
        let time_hi_version = (high & 0x0fff) | 0x4000;
        let clock_seq = ((low >> 48) & 0x3fff) | 0x8000;
        let node = self.counter & 0xffff_ffff_ffff;
        format!("{time_low:08x}-{time_mid:04x}-{time_hi_version:04x}-{clock_seq:04x}-{node:012x}")
    }

    /// `digits` random lower-case hex digits (at most 16), e.g. for deployment ids.
    pub(crate) fn hex(&mut self, digits: usize) -> String {
        let digits = digits.clamp(1, 16);
        let full = format!("{:016x}", self.rng.next_u64());
        full.chars().take(digits).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_sequences_repeat_and_differ() {
        let (mut a, mut b, mut c) = (Rng::new(1), Rng::new(1), Rng::new(2));
        let sa: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        let sb: Vec<u64> = (0..5).map(|_| b.next_u64()).collect();
        let sc: Vec<u64> = (0..5).map(|_| c.next_u64()).collect();
        assert_eq!(sa, sb);
        assert_ne!(sa, sc);
        let mut zero = Rng::new(0);
        assert_ne!(zero.next_u64(), 0);
    }

    #[test]
    fn floats_in_unit_interval_and_below_in_range() {
        let mut rng = Rng::new(9);
        for _ in 0..10_000 {
            let f = rng.next_f64();
            assert!((0.0..1.0).contains(&f));
            assert!(rng.below(6) < 6);
        }
        assert_eq!(rng.below(0), 0);
    }

    #[test]
    fn uuids_are_unique_and_shaped() {
        let mut ids = IdGen {
            rng: Rng::new(3),
            counter: 0,
        };
        let a = ids.uuid();
        let b = ids.uuid();
        assert_ne!(a, b);
        let groups: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert_eq!(a.as_bytes()[14], b'4');
        assert_eq!(ids.hex(9).len(), 9);
    }
}
