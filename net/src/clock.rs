//! The wall clock, as Unix time. One place reads it, so every service stamps time the same way:
//! a clock set before 1970 reads as 0 (callers that must not stamp 0, such as tlog-witness
//! cosignatures, check for it), and a time past `u64::MAX` milliseconds saturates.
//!
//! Durations and deadlines are not here: they use [`std::time::Instant`], which never jumps.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix time now, in whole seconds; 0 if the clock is before 1970.
pub fn unix_secs() -> u64 {
    secs_since_epoch(SystemTime::now())
}

/// Unix time now, in whole milliseconds; 0 if the clock is before 1970.
pub fn unix_millis() -> u64 {
    millis_since_epoch(SystemTime::now())
}

/// Whole seconds from the Unix epoch to `t`; 0 for a time before it.
pub fn secs_since_epoch(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Whole milliseconds from the Unix epoch to `t`; 0 for a time before it, `u64::MAX` past the
/// range.
pub fn millis_since_epoch(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn whole_units_since_the_epoch() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_123_987);
        assert_eq!(secs_since_epoch(t), 1_700_000_123);
        assert_eq!(millis_since_epoch(t), 1_700_000_123_987);
        assert_eq!(secs_since_epoch(UNIX_EPOCH), 0);
        assert_eq!(millis_since_epoch(UNIX_EPOCH), 0);
    }

    #[test]
    fn before_the_epoch_is_zero() {
        let t = UNIX_EPOCH - Duration::from_secs(5);
        assert_eq!(secs_since_epoch(t), 0);
        assert_eq!(millis_since_epoch(t), 0);
    }

    #[test]
    fn past_the_range_saturates() {
        // u64::MAX seconds is far more than u64::MAX milliseconds; not every platform can
        // represent it, so only check where it can.
        if let Some(t) = UNIX_EPOCH.checked_add(Duration::from_secs(u64::MAX / 1000 + 1)) {
            assert_eq!(millis_since_epoch(t), u64::MAX);
        }
    }

    #[test]
    fn now_is_between_two_readings_of_the_system_clock() {
        let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let (secs, millis) = (unix_secs(), unix_millis());
        let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        assert!(before.as_secs() <= secs && secs <= after.as_secs());
        assert!(before.as_millis() <= u128::from(millis));
        assert!(u128::from(millis) <= after.as_millis());
    }
}
