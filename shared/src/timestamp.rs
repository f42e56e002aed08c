//! RFC 3339 timestamps with exactly three fractional digits, as Segment shows them.
//!
//! Hand-written because it runs once per exported message and a general formatter
//! costs more than the rest of the mapping.

use std::time::{SystemTime, UNIX_EPOCH};

/// Length of `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub const LEN: usize = 24;

/// A formatted timestamp, kept on the stack.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Timestamp([u8; LEN]);

impl Timestamp {
    /// Formats milliseconds since the Unix epoch; `None` outside years 0000–9999.
    pub fn from_epoch_millis(ms: i64) -> Option<Self> {
        let days = ms.div_euclid(86_400_000);
        let ms_of_day = ms.rem_euclid(86_400_000);
        let (year, month, day) = civil_from_days(days);
        if !(0..=9999).contains(&year) {
            return None;
        }
        let (secs, millis) = (ms_of_day / 1000, ms_of_day % 1000);
        let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
        let mut b = *b"0000-00-00T00:00:00.000Z";
        put(&mut b[0..4], year);
        put(&mut b[5..7], month);
        put(&mut b[8..10], day);
        put(&mut b[11..13], h);
        put(&mut b[14..16], m);
        put(&mut b[17..19], s);
        put(&mut b[20..23], millis);
        Some(Self(b))
    }

    pub fn now() -> Self {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        Self::from_epoch_millis(ms).expect("the clock is within years 0000-9999")
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII digits and separators are ever written.
        std::str::from_utf8(&self.0).expect("ASCII")
    }
}

impl std::fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Writes `value` as zero-padded decimal digits filling `out`.
fn put(out: &mut [u8], mut value: i64) {
    for digit in out.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to (year, month, day).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Now, in epoch milliseconds.
pub fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(ms: i64) -> String {
        Timestamp::from_epoch_millis(ms).unwrap().as_str().to_owned()
    }

    #[test]
    fn formats_the_seed_example_creation_date() {
        assert_eq!(fmt(1_568_409_618_153), "2019-09-13T21:20:18.153Z");
    }

    #[test]
    fn always_three_fractional_digits() {
        assert_eq!(fmt(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(fmt(1_000), "1970-01-01T00:00:01.000Z");
        assert_eq!(fmt(7), "1970-01-01T00:00:00.007Z");
    }

    #[test]
    fn handles_leap_days_and_century_rules() {
        assert_eq!(fmt(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(fmt(4_107_542_399_999), "2100-02-28T23:59:59.999Z");
        assert_eq!(fmt(4_107_542_400_000), "2100-03-01T00:00:00.000Z");
        assert_eq!(fmt(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn agrees_with_day_by_day_counting_over_four_centuries() {
        // An independent, slow calendar walk checks every day from 1970 to 2370.
        let (mut y, mut m, mut d) = (1970, 1, 1);
        let month_len = |y: i64, m: i64| match m {
            2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        for days in 0..146_097 {
            assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
            d += 1;
            if d > month_len(y, m) {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }

    #[test]
    fn refuses_years_outside_four_digits() {
        assert!(Timestamp::from_epoch_millis(253_402_300_800_000).is_none());
        assert!(Timestamp::from_epoch_millis(-62_167_219_200_001).is_none());
        assert!(Timestamp::from_epoch_millis(253_402_300_799_999).is_some());
    }
}
