//! Time: RFC 3339 stamps (shared with the HubSpot sandbox) and the write
//! clock that dates every write on the library's clock.

/// `epoch_ms` as RFC 3339 UTC (`2025-10-14T09:00:00.123Z`, or without the
/// fraction when `millis` is false). Shared with the HubSpot sandbox.
pub(crate) fn rfc3339(epoch_ms: i64, millis: bool) -> String {
    let days = epoch_ms.div_euclid(86_400_000);
    let ms_of_day = epoch_ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    let (h, m, s) = (
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1000 % 60,
    );
    if millis {
        let ms = ms_of_day % 1000;
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z")
    } else {
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
    }
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`), to avoid a date crate for one format.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The library's clock, so a test that models time (tests/model) dates
/// WARP's and HubSpot's writes on the same clock as the functions.
pub(crate) fn now_ms() -> i64 {
    hubwarp::time::now_ms()
}

/// Hands out write times that strictly increase, even within one
/// millisecond, so `updated_at` orders every write (last-writer-wins relies
/// on it).
#[derive(Default)]
pub(super) struct Clock {
    last_ms: i64,
}

impl Clock {
    pub(super) fn stamp(&mut self) -> String {
        self.last_ms = now_ms().max(self.last_ms + 1);
        rfc3339(self.last_ms, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(0, true), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_760_432_400_000, false), "2025-10-14T09:00:00Z");
        assert_eq!(rfc3339(951_782_400_123, true), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339(-1, true), "1969-12-31T23:59:59.999Z");
    }
}
