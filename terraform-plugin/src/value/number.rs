//! Terraform numbers held exactly, as a normalized decimal.
//!
//! cty numbers are arbitrary-precision (Terraform parses literals at 512 bits), so an `f64` would
//! lose digits that Terraform later compares bit for bit ("Provider produced inconsistent
//! result"). [`Number`] stores sign, significant digits and a power-of-ten exponent, normalized so
//! that each value has exactly one representation: `1`, `1.0`, `"1"` and `10e-1` are all equal,
//! and the derived `Eq`/`Hash` are numeric.

use std::cmp::Ordering;
use std::fmt;

/// Largest absolute exponent we accept, far beyond anything Terraform produces.
///
/// Why a bound at all: with it, every exponent arithmetic below fits an `i128` with room to spare,
/// and no code path can be asked to print a billion zeros.
const MAX_EXPONENT: i64 = 1 << 40;

/// How many zeros [`Number`]'s `Display` writes out before switching to exponent notation.
const MAX_PLAIN_ZEROS: i128 = 20;

/// More significant digits than any finite `f64` has in its exact decimal expansion (767).
const F64_EXACT_DIGITS: usize = 800;

/// A cty number: an exact decimal of any size and precision, or ±infinity.
///
/// ```ignore
/// let n = Number::parse("3.14159265358979323846264338327950288")?;
/// assert_eq!(n.to_string(), "3.14159265358979323846264338327950288");
/// assert_eq!(Number::parse("1.0")?, Number::from_i64(1));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Number(Repr);

/// The normalized representation behind [`Number`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Repr {
    /// `(-1)^negative × digits × 10^exponent`.
    ///
    /// Invariants: `digits` is ASCII `0`–`9` with no leading and no trailing zeros; zero is
    /// `digits == ""`, `negative == false`, `exponent == 0` (so -0 and 0 are the same number,
    /// as in Terraform); `|exponent| <= MAX_EXPONENT`.
    Finite {
        /// Whether the number is below zero.
        negative: bool,
        /// Significant digits, most significant first.
        digits: String,
        /// Power of ten the digits are scaled by.
        exponent: i64,
    },
    /// Positive or negative infinity (cty has both; it has no NaN).
    Infinity {
        /// Whether this is negative infinity.
        negative: bool,
    },
}

/// Why a text is not a number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    /// The text is not a decimal number (nor `Inf`/`-Inf`).
    #[error("{0:?} is not a decimal number")]
    Syntax(String),
    /// The exponent is beyond ±2^40.
    #[error("the exponent of {0:?} is out of range")]
    ExponentOutOfRange(String),
}

impl NumberError {
    /// Builds an error quoting at most a short prefix of the text (it may be megabytes long).
    fn quoting(text: &str, make: fn(String) -> Self) -> Self {
        let mut quoted: String = text.chars().take(40).collect();
        if quoted.len() < text.len() {
            quoted.push('…');
        }
        make(quoted)
    }
}

impl Number {
    /// Zero.
    pub fn zero() -> Self {
        Number(Repr::Finite {
            negative: false,
            digits: String::new(),
            exponent: 0,
        })
    }

    /// Positive (`negative == false`) or negative infinity.
    pub fn infinity(negative: bool) -> Self {
        Number(Repr::Infinity { negative })
    }

    /// The integer `i`.
    pub fn from_i64(i: i64) -> Self {
        Self::from_integer(i < 0, i.unsigned_abs())
    }

    /// The integer `u`.
    pub fn from_u64(u: u64) -> Self {
        Self::from_integer(false, u)
    }

    /// The exact value of `f` (like cty's `NumberFloatVal`), or `None` for NaN.
    ///
    /// The result is the binary value itself: `from_f64(0.1)` is
    /// `0.1000000000000000055511151231257827021181583404541015625`, which is what makes
    /// a float decoded from msgpack re-encode to the identical float. For the short decimal a
    /// person would write, use `Number::parse(&f.to_string())`.
    pub fn from_f64(f: f64) -> Option<Self> {
        if f.is_nan() {
            return None;
        }
        if f.is_infinite() {
            return Some(Self::infinity(f < 0.0));
        }
        // Rust's exact-precision float formatting is correctly rounded, and 800 digits exceed
        // the longest exact expansion of any f64, so this text is the exact value.
        let text = format!("{f:.F64_EXACT_DIGITS$e}");
        Self::parse(&text).ok()
    }

    /// Parses decimal text: an optional sign, digits with an optional fraction, an optional
    /// `e`/`E` exponent; or `Inf`/`inf` with an optional sign, as Go's `big.ParseFloat` (which
    /// Terraform uses for numbers sent as strings) accepts.
    ///
    /// ```ignore
    /// assert_eq!(Number::parse("-0.000000000000000000000001")?.to_string(), "-1e-24");
    /// assert!(Number::parse("1e400").is_ok());
    /// assert!(Number::parse("NaN").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Self, NumberError> {
        let syntax = || NumberError::quoting(text, NumberError::Syntax);
        let (negative, body) = match text.as_bytes().first() {
            Some(b'-') => (true, text.get(1..).unwrap_or("")),
            Some(b'+') => (false, text.get(1..).unwrap_or("")),
            _ => (false, text),
        };
        if body == "Inf" || body == "inf" {
            return Ok(Self::infinity(negative));
        }

        let (mantissa, exponent_text) = match body.find(['e', 'E']) {
            Some(at) => (
                body.get(..at).unwrap_or(""),
                Some(body.get(at + 1..).unwrap_or("")),
            ),
            None => (body, None),
        };
        let (int_part, frac_part) = match mantissa.find('.') {
            Some(at) => (
                mantissa.get(..at).unwrap_or(""),
                mantissa.get(at + 1..).unwrap_or(""),
            ),
            None => (mantissa, ""),
        };
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if (int_part.is_empty() && frac_part.is_empty())
            || !all_digits(int_part)
            || !all_digits(frac_part)
        {
            return Err(syntax());
        }

        let exponent = match exponent_text {
            None => 0,
            Some(e) => parse_exponent(e).ok_or_else(syntax)?,
        };

        // value = int_part.frac_part × 10^exponent = (int_part ++ frac_part) × 10^(exponent - |frac|)
        let mut digits = String::with_capacity(int_part.len() + frac_part.len());
        digits.push_str(int_part);
        digits.push_str(frac_part);
        let frac_len = i128::try_from(frac_part.len()).map_err(|_| syntax())?;
        Self::normalize(negative, digits, exponent - frac_len)
            .ok_or_else(|| NumberError::quoting(text, NumberError::ExponentOutOfRange))
    }

    /// The value as an `i64`, only if it is exactly an integer in range.
    pub fn as_i64(&self) -> Option<i64> {
        let (negative, magnitude) = self.integer_magnitude()?;
        if negative {
            // -(2^63) is the one magnitude that fits only as a negative number.
            0i64.checked_sub_unsigned(magnitude)
        } else {
            i64::try_from(magnitude).ok()
        }
    }

    /// The value as a `u64`, only if it is exactly a non-negative integer in range.
    pub fn as_u64(&self) -> Option<u64> {
        match self.integer_magnitude()? {
            (false, magnitude) => Some(magnitude),
            (true, 0) => Some(0),
            (true, _) => None,
        }
    }

    /// The nearest `f64` (±infinity beyond its range, ±0 below it).
    pub fn as_f64(&self) -> f64 {
        match &self.0 {
            Repr::Infinity { negative: false } => f64::INFINITY,
            Repr::Infinity { negative: true } => f64::NEG_INFINITY,
            Repr::Finite { digits, .. } if digits.is_empty() => 0.0,
            Repr::Finite {
                negative,
                digits,
                exponent,
            } => {
                // Rust's float parser rounds correctly for any number of digits and saturates
                // huge exponents, so the text form is the simplest exact route.
                let sign = if *negative { "-" } else { "" };
                format!("{sign}{digits}e{exponent}")
                    .parse::<f64>()
                    .unwrap_or(f64::NAN)
            }
        }
    }

    /// The value as an `f64`, only if that `f64` is exactly this number (so it can go on the
    /// wire as a msgpack float without loss). Infinities are exact.
    pub fn to_f64_exact(&self) -> Option<f64> {
        if let Repr::Finite { digits, .. } = &self.0 {
            // Cheap rejection before the 800-digit comparison: no f64 has more digits.
            if digits.len() > F64_EXACT_DIGITS {
                return None;
            }
        }
        let f = self.as_f64();
        (Self::from_f64(f).as_ref() == Some(self)).then_some(f)
    }

    #[cfg(any(test, feature = "testing"))]
    /// Whether this is +∞ or -∞.
    pub fn is_infinite(&self) -> bool {
        matches!(self.0, Repr::Infinity { .. })
    }

    /// The integer `±magnitude`.
    fn from_integer(negative: bool, magnitude: u64) -> Self {
        let digits = magnitude.to_string();
        // u64 text never has an exponent this large, so normalization cannot fail.
        Self::normalize(negative, digits, 0).unwrap_or_else(Self::zero)
    }

    /// Sign and magnitude, if this is an integer whose magnitude fits in a `u64`.
    fn integer_magnitude(&self) -> Option<(bool, u64)> {
        let Repr::Finite {
            negative,
            digits,
            exponent,
        } = &self.0
        else {
            return None;
        };
        let zeros = usize::try_from(*exponent).ok()?;
        // u64::MAX has 20 digits: anything longer cannot fit (and must not be built).
        if digits.len().checked_add(zeros)? > 20 {
            return None;
        }
        let mut magnitude: u64 = 0;
        for b in digits.bytes() {
            magnitude = magnitude
                .checked_mul(10)?
                .checked_add(u64::from(b.wrapping_sub(b'0')))?;
        }
        for _ in 0..zeros {
            magnitude = magnitude.checked_mul(10)?;
        }
        Some((*negative, magnitude))
    }

    /// Builds the canonical form of `±digits × 10^exponent` (digits may have leading or
    /// trailing zeros); `None` if the exponent ends up beyond ±[`MAX_EXPONENT`].
    fn normalize(negative: bool, digits: String, exponent: i128) -> Option<Self> {
        let trimmed_start = digits.trim_start_matches('0');
        let trimmed = trimmed_start.trim_end_matches('0');
        if trimmed.is_empty() {
            return Some(Self::zero());
        }
        let trailing = i128::try_from(trimmed_start.len() - trimmed.len()).ok()?;
        let exponent = exponent.checked_add(trailing)?;
        let exponent = i64::try_from(exponent)
            .ok()
            .filter(|e| e.unsigned_abs() <= MAX_EXPONENT.unsigned_abs())?;
        let digits = if trimmed.len() == digits.len() {
            digits
        } else {
            trimmed.to_owned()
        };
        Some(Number(Repr::Finite {
            negative,
            digits,
            exponent,
        }))
    }
}

/// Parses an exponent (`[+-]digits`), saturating far beyond the accepted range so that the
/// range check in [`Number::normalize`] reports it.
fn parse_exponent(text: &str) -> Option<i128> {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, text.get(1..)?),
        Some(b'+') => (false, text.get(1..)?),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let limit = i128::from(i64::MAX);
    let mut value: i128 = 0;
    for b in digits.bytes() {
        value = (value * 10 + i128::from(b - b'0')).min(limit);
    }
    Some(if negative { -value } else { value })
}

impl fmt::Display for Number {
    /// Canonical decimal text: plain notation (`1500`, `-0.25`, `0.000001`) unless that would
    /// need more than 20 padding zeros, then exponent notation (`1e400`, `-1.5e-30`);
    /// infinities print as Go does (`+Inf`, `-Inf`). Every form parses back with
    /// [`Number::parse`], Terraform, and JSON (except the infinities).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (negative, digits, exponent) = match &self.0 {
            Repr::Infinity { negative: false } => return f.write_str("+Inf"),
            Repr::Infinity { negative: true } => return f.write_str("-Inf"),
            Repr::Finite { digits, .. } if digits.is_empty() => return f.write_str("0"),
            Repr::Finite {
                negative,
                digits,
                exponent,
            } => (*negative, digits.as_str(), i128::from(*exponent)),
        };
        if negative {
            f.write_str("-")?;
        }
        let len = i128::try_from(digits.len()).unwrap_or(i128::MAX);
        // Digits before the decimal point in plain notation.
        let point = len + exponent;
        if (0..=MAX_PLAIN_ZEROS).contains(&exponent) {
            f.write_str(digits)?;
            write_zeros(f, exponent)
        } else if exponent < 0 && point > 0 {
            let at = usize::try_from(point).unwrap_or(0);
            let (int, frac) = (
                digits.get(..at).unwrap_or(""),
                digits.get(at..).unwrap_or(""),
            );
            write!(f, "{int}.{frac}")
        } else if exponent < 0 && -point <= MAX_PLAIN_ZEROS {
            f.write_str("0.")?;
            write_zeros(f, -point)?;
            f.write_str(digits)
        } else {
            let (first, rest) = digits.split_at(1.min(digits.len()));
            f.write_str(first)?;
            if !rest.is_empty() {
                write!(f, ".{rest}")?;
            }
            write!(f, "e{}", point - 1)
        }
    }
}

/// Writes `count` zeros (callers keep `count` small).
fn write_zeros(f: &mut fmt::Formatter<'_>, count: i128) -> fmt::Result {
    for _ in 0..count {
        f.write_str("0")?;
    }
    Ok(())
}

impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Number {
    /// Numeric order, with -∞ below and +∞ above every finite number.
    fn cmp(&self, other: &Self) -> Ordering {
        /// Where a number sits: -∞, negative, zero, positive, +∞.
        fn class(n: &Number) -> i8 {
            match &n.0 {
                Repr::Infinity { negative: true } => -2,
                Repr::Infinity { negative: false } => 2,
                Repr::Finite { digits, .. } if digits.is_empty() => 0,
                Repr::Finite { negative: true, .. } => -1,
                Repr::Finite {
                    negative: false, ..
                } => 1,
            }
        }
        let by_class = class(self).cmp(&class(other));
        if by_class != Ordering::Equal {
            return by_class;
        }
        let (
            Repr::Finite {
                negative,
                digits: a,
                exponent: ea,
            },
            Repr::Finite {
                digits: b,
                exponent: eb,
                ..
            },
        ) = (&self.0, &other.0)
        else {
            // Same class and not finite: the same infinity.
            return Ordering::Equal;
        };
        // With no leading zeros, more digits before the point means a larger magnitude; with
        // the same point, plain digit-string order is magnitude order (no trailing zeros).
        let point = |d: &String, e: &i64| i128::try_from(d.len()).unwrap_or(i128::MAX) + *e as i128;
        let magnitude = point(a, ea)
            .cmp(&point(b, eb))
            .then_with(|| a.as_bytes().cmp(b.as_bytes()));
        if *negative {
            magnitude.reverse()
        } else {
            magnitude
        }
    }
}

impl From<i64> for Number {
    fn from(i: i64) -> Self {
        Self::from_i64(i)
    }
}

impl From<i32> for Number {
    fn from(i: i32) -> Self {
        Self::from_i64(i64::from(i))
    }
}

impl From<u64> for Number {
    fn from(u: u64) -> Self {
        Self::from_u64(u)
    }
}

impl From<u32> for Number {
    fn from(u: u32) -> Self {
        Self::from_u64(u64::from(u))
    }
}

impl std::str::FromStr for Number {
    type Err = NumberError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn n(text: &str) -> Number {
        match Number::parse(text) {
            Ok(n) => n,
            Err(e) => panic!("{text:?} should parse: {e}"),
        }
    }

    #[test]
    fn parse_and_display_canonical_text() {
        let cases = [
            ("0", "0"),
            ("-0", "0"),
            ("0.000", "0"),
            ("1", "1"),
            ("1.0", "1"),
            ("+1", "1"),
            ("007", "7"),
            ("1.", "1"),
            (".5", "0.5"),
            ("-1.50", "-1.5"),
            ("1500", "1500"),
            ("1.5e3", "1500"),
            ("15E2", "1500"),
            (
                "3.14159265358979323846264338327950288",
                "3.14159265358979323846264338327950288",
            ),
            ("1e20", "100000000000000000000"),
            ("1e21", "1e21"),
            ("1e400", "1e400"),
            ("12345e400", "1.2345e404"),
            ("-0.000000000000000000000001", "-1e-24"),
            ("0.00000000000000000001", "0.00000000000000000001"),
            ("0.000000000000000000001", "0.000000000000000000001"),
            ("0.0000000000000000000001", "1e-22"),
            ("123.456e-1000", "1.23456e-998"),
            ("18446744073709551616", "18446744073709551616"),
            ("Inf", "+Inf"),
            ("+inf", "+Inf"),
            ("-Inf", "-Inf"),
        ];
        for (text, want) in cases {
            let parsed = n(text);
            assert_eq!(parsed.to_string(), want, "display of {text:?}");
            assert_eq!(n(want), parsed, "reparse of {want:?}");
        }
    }

    #[test]
    fn parse_rejects_non_numbers() {
        let cases = [
            "", "-", "+", ".", "e5", "1e", "1e+", "1.2.3", "1,5", " 1", "1 ", "0x10", "NaN", "nan",
            "Infinity", "1_000", "--1", "1e5.5", "١",
        ];
        for text in cases {
            assert!(
                matches!(Number::parse(text), Err(NumberError::Syntax(_))),
                "{text:?} should be rejected"
            );
        }
        assert!(matches!(
            Number::parse("1e99999999999999999999999"),
            Err(NumberError::ExponentOutOfRange(_))
        ));
        assert!(matches!(
            Number::parse("1e-1099511627777"),
            Err(NumberError::ExponentOutOfRange(_))
        ));
        // A long bad text is quoted only in part.
        let long = format!("x{}", "9".repeat(10_000));
        let message = Number::parse(&long).map(|_| ()).unwrap_err().to_string();
        assert!(message.len() < 100, "{message}");
    }

    #[test]
    fn equality_is_numeric() {
        assert_eq!(n("1"), Number::from_i64(1));
        assert_eq!(n("1.000"), Number::from_u64(1));
        assert_eq!(Number::from_f64(1.0), Some(Number::from_i64(1)));
        assert_eq!(Number::from_f64(-0.0), Some(Number::zero()));
        assert_eq!(n("100e-2"), n("0.01e2"));
        assert_ne!(n("1"), n("-1"));
        assert_ne!(n("1"), n("1.0000000000000000000000000001"));
    }

    #[test]
    fn integer_accessors() {
        let cases: [(&str, Option<i64>, Option<u64>); 9] = [
            ("0", Some(0), Some(0)),
            ("-5", Some(-5), None),
            ("1e3", Some(1000), Some(1000)),
            ("1.5", None, None),
            ("9223372036854775807", Some(i64::MAX), Some(i64::MAX as u64)),
            ("-9223372036854775808", Some(i64::MIN), None),
            ("9223372036854775808", None, Some(1 << 63)),
            ("18446744073709551615", None, Some(u64::MAX)),
            ("1e400", None, None),
        ];
        for (text, i, u) in cases {
            assert_eq!(n(text).as_i64(), i, "as_i64 of {text}");
            assert_eq!(n(text).as_u64(), u, "as_u64 of {text}");
        }
        assert_eq!(Number::infinity(false).as_i64(), None);
    }

    #[test]
    fn float_conversion() {
        assert_eq!(
            Number::from_f64(0.1).map(|n| n.to_string()),
            Some("0.1000000000000000055511151231257827021181583404541015625".to_owned())
        );
        assert_eq!(Number::from_f64(f64::NAN), None);
        assert_eq!(
            Number::from_f64(f64::INFINITY),
            Some(Number::infinity(false))
        );
        assert_eq!(n("1e400").as_f64(), f64::INFINITY);
        assert_eq!(n("-1e400").as_f64(), f64::NEG_INFINITY);
        assert_eq!(n("1e-400").as_f64(), 0.0);
        assert_eq!(n("0.1").as_f64(), 0.1);
        assert_eq!(n("1.5").to_f64_exact(), Some(1.5));
        assert_eq!(n("0.1").to_f64_exact(), None);
        assert_eq!(n("-Inf").to_f64_exact(), Some(f64::NEG_INFINITY));
        let tiny = Number::from_f64(f64::from_bits(1));
        assert_eq!(tiny.as_ref().map(Number::as_f64), Some(f64::from_bits(1)));
        assert_eq!(tiny.and_then(|t| t.to_f64_exact()), Some(f64::from_bits(1)));
    }

    #[test]
    fn ordering_is_numeric() {
        let ascending = [
            "-Inf", "-1e400", "-2", "-1.5", "-1", "-1e-30", "0", "1e-30", "0.5", "1", "1.0001",
            "2", "10", "1e400", "+Inf",
        ];
        for pair in ascending.windows(2) {
            if let [a, b] = pair {
                assert!(n(a) < n(b), "{a} < {b}");
                assert!(n(b) > n(a), "{b} > {a}");
            }
        }
        assert_eq!(n("1.0").cmp(&n("1")), Ordering::Equal);
    }

    proptest! {
        #[test]
        fn i64_round_trips(i in any::<i64>()) {
            let num = Number::from_i64(i);
            prop_assert_eq!(num.as_i64(), Some(i));
            prop_assert_eq!(n(&num.to_string()), num.clone());
            prop_assert_eq!(num.to_string(), i.to_string());
        }

        #[test]
        fn u64_round_trips(u in any::<u64>()) {
            let num = Number::from_u64(u);
            prop_assert_eq!(num.as_u64(), Some(u));
            prop_assert_eq!(num.to_string(), u.to_string());
        }

        #[test]
        fn f64_round_trips(f in any::<f64>().prop_filter("not NaN", |f| !f.is_nan())) {
            let num = Number::from_f64(f);
            prop_assert!(num.is_some());
            let num = num.unwrap_or_else(Number::zero);
            prop_assert_eq!(num.as_f64(), if f == 0.0 { 0.0 } else { f });
            prop_assert_eq!(num.to_f64_exact(), Some(num.as_f64()));
            prop_assert_eq!(n(&num.to_string()), num);
        }

        #[test]
        fn decimal_text_round_trips(text in "-?[0-9]{1,60}(\\.[0-9]{1,60})?([eE][-+]?[0-9]{1,4})?") {
            let num = n(&text);
            let shown = num.to_string();
            prop_assert_eq!(n(&shown), num.clone());
            // Canonical: showing the reparsed value gives the same text.
            prop_assert_eq!(n(&shown).to_string(), shown.clone());
            // The shown text is also a valid JSON number.
            prop_assert!(serde_json::from_str::<serde_json::Number>(&shown).is_ok(), "{}", shown);
        }

        #[test]
        fn order_matches_f64_where_exact(a in any::<i32>(), b in any::<i32>(), sa in 0u8..6, sb in 0u8..6) {
            let fa = f64::from(a) / f64::from(1u32 << sa);
            let fb = f64::from(b) / f64::from(1u32 << sb);
            let na = Number::from_f64(fa).unwrap_or_else(Number::zero);
            let nb = Number::from_f64(fb).unwrap_or_else(Number::zero);
            prop_assert_eq!(na.partial_cmp(&nb), fa.partial_cmp(&fb));
        }
    }
}
