//! Working hours of a group: weekly opening intervals in an IANA time zone, with holidays.
//!
//! Outside its hours a group takes no live conversations: a visitor who opens one gets the offline form and
//! leaves a message ([`ConversationState::Offline`](crate::model::ConversationState::Offline)). A group with no
//! hours configured is always open; a configured schedule without any interval is always closed.
//!
//! Local times are turned into instants with the time zone's rules for that very date (the tz database is
//! compiled in, so it works on a machine without one), so daylight-saving switches are handled: a local time
//! skipped by a switch is moved forward by the length of the gap (02:30 on a spring-forward night at 02:00 is
//! 03:30, as calendar software does), a repeated one means its first occurrence.
//!
//! The serde form, also the wire and storage form:
//!
//! ```json
//! {
//!   "time_zone": "Europe/Berlin",
//!   "weekly": {"mon": ["09:00-17:00"], "tue": ["09:00-12:00", "13:00-17:00"], "fri": ["22:00-02:00"]},
//!   "holidays": [{"date": "2026-12-25"}, {"date": "2026-12-24", "hours": ["09:00-12:00"]}]
//! }
//! ```
//!
//! An interval is `"HH:MM-HH:MM"`; `24:00` may close a day, and an interval whose end is not after its start
//! runs past midnight into the next day (`"22:00-02:00"`). A holiday without `hours` is closed all day; with
//! `hours`, those replace the weekly ones for that date. Days missing from `weekly` are closed.

use std::collections::BTreeMap;
use std::fmt;

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::limits::{MAX_HOLIDAYS, MAX_INTERVALS_PER_DAY};
use crate::model::Timestamp;

/// How far ahead [`WorkingHours::next_opening`] looks, in days.
const LOOKAHEAD_DAYS: usize = 2 * 366 + 2;
const MINUTES_PER_DAY: u16 = 24 * 60;
const DAY_KEYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Why a working-hours schedule was refused.
#[derive(Clone, PartialEq, Eq, Debug, Error)]
#[non_exhaustive]
pub enum HoursError {
    /// The time zone is not in the tz database.
    #[error("unknown time zone {0:?}")]
    UnknownTimeZone(String),
    /// A key of `weekly` is not a day (`mon` … `sun`).
    #[error("unknown day {0:?}; expected one of mon, tue, wed, thu, fri, sat, sun")]
    UnknownDay(String),
    /// An interval is not `HH:MM-HH:MM` with valid times, or opens and closes at the same time.
    #[error("invalid interval {0:?}; expected \"HH:MM-HH:MM\" with different times")]
    InvalidInterval(String),
    /// A holiday's date is not `YYYY-MM-DD`.
    #[error("invalid date {0:?}; expected YYYY-MM-DD")]
    InvalidDate(String),
    /// A date is listed twice among the holidays.
    #[error("holiday {0} is listed twice")]
    DuplicateHoliday(String),
    /// Too many intervals in one day, or too many holidays.
    #[error("too many {what}: at most {max}")]
    TooMany {
        /// What there are too many of.
        what: &'static str,
        /// The limit.
        max: usize,
    },
}

/// One opening interval of a day, in minutes after local midnight.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Interval {
    open: u16,
    /// `1..=1440`; not after `open` means the interval ends on the next day.
    close: u16,
}

impl Interval {
    fn parse(text: &str) -> Result<Self, HoursError> {
        let invalid = || HoursError::InvalidInterval(text.to_owned());
        let (open, close) = text.split_once('-').ok_or_else(invalid)?;
        let open = minutes(open.trim())
            .filter(|m| *m < MINUTES_PER_DAY)
            .ok_or_else(invalid)?;
        let close = minutes(close.trim()).ok_or_else(invalid)?;
        // "24:00" closes at midnight; as an end, "00:00" means the same (the interval crosses midnight).
        let close = if close == 0 { MINUTES_PER_DAY } else { close };
        if open == close {
            return Err(invalid());
        }
        Ok(Self { open, close })
    }

    fn crosses_midnight(self) -> bool {
        self.close <= self.open
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        // A crossing interval that ends at midnight is written with 00:00 (24:00 reads as the same day).
        let close = if self.crosses_midnight() && self.close == MINUTES_PER_DAY {
            0
        } else {
            self.close
        };
        write!(f, "{}-{}", hm(self.open), hm(close))
    }
}

/// `HH:MM` (00:00 to 24:00) as minutes after midnight.
fn minutes(text: &str) -> Option<u16> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    let total = h.checked_mul(60)?.checked_add(m)?;
    (m < 60 && total <= MINUTES_PER_DAY).then_some(total)
}

fn intervals(texts: &[String], what: &'static str) -> Result<Vec<Interval>, HoursError> {
    if texts.len() > MAX_INTERVALS_PER_DAY {
        return Err(HoursError::TooMany {
            what,
            max: MAX_INTERVALS_PER_DAY,
        });
    }
    let mut parsed = texts
        .iter()
        .map(|text| Interval::parse(text))
        .collect::<Result<Vec<_>, _>>()?;
    parsed.sort_by_key(|interval| interval.open);
    Ok(parsed)
}

/// The serde form (see the [module docs](self)).
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    time_zone: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    weekly: BTreeMap<String, Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    holidays: Vec<RawHoliday>,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHoliday {
    date: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hours: Option<Vec<String>>,
}

/// A group's working hours: validated, with its time zone resolved. Build it with [`WorkingHours::new`] and the
/// `with_*` methods, or deserialize it from the form in the [module docs](self).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "Raw", into = "Raw")]
pub struct WorkingHours {
    time_zone: TimeZone,
    time_zone_name: String,
    /// Monday first.
    weekly: [Vec<Interval>; 7],
    /// Dates with their own hours (empty: closed all day).
    holidays: BTreeMap<Date, Vec<Interval>>,
}

impl PartialEq for WorkingHours {
    fn eq(&self, other: &Self) -> bool {
        self.time_zone_name == other.time_zone_name
            && self.weekly == other.weekly
            && self.holidays == other.holidays
    }
}

impl Eq for WorkingHours {}

impl WorkingHours {
    /// A schedule in time zone `time_zone` (an IANA name such as `Europe/Berlin`) with no opening yet.
    pub fn new(time_zone: &str) -> Result<Self, HoursError> {
        let resolved =
            TimeZone::get(time_zone).map_err(|_| HoursError::UnknownTimeZone(time_zone.to_owned()))?;
        Ok(Self {
            time_zone: resolved,
            time_zone_name: time_zone.to_owned(),
            weekly: Default::default(),
            holidays: BTreeMap::new(),
        })
    }

    /// Sets the intervals of a weekday (`"mon"` … `"sun"`), e.g. `["09:00-12:00", "13:00-17:00"]`.
    pub fn with_day(mut self, day: &str, hours: &[&str]) -> Result<Self, HoursError> {
        let index = day_index(day)?;
        let texts: Vec<String> = hours.iter().map(|h| (*h).to_owned()).collect();
        self.weekly[index] = intervals(&texts, "intervals in a day")?;
        Ok(self)
    }

    /// Adds a holiday (`YYYY-MM-DD` in the schedule's time zone): closed all day when `hours` is empty, else open
    /// only in those intervals.
    pub fn with_holiday(mut self, date: &str, hours: &[&str]) -> Result<Self, HoursError> {
        let parsed: Date = date
            .parse()
            .map_err(|_| HoursError::InvalidDate(date.to_owned()))?;
        if self.holidays.contains_key(&parsed) {
            return Err(HoursError::DuplicateHoliday(date.to_owned()));
        }
        if self.holidays.len() >= MAX_HOLIDAYS {
            return Err(HoursError::TooMany {
                what: "holidays",
                max: MAX_HOLIDAYS,
            });
        }
        let texts: Vec<String> = hours.iter().map(|h| (*h).to_owned()).collect();
        self.holidays
            .insert(parsed, intervals(&texts, "intervals in a holiday")?);
        Ok(self)
    }

    /// The IANA name of the schedule's time zone.
    pub fn time_zone(&self) -> &str {
        &self.time_zone_name
    }

    /// Whether the group is open at `at`.
    pub fn is_open(&self, at: Timestamp) -> bool {
        let Some(instant) = instant(at) else {
            return false;
        };
        let date = self.time_zone.to_datetime(instant).date();
        // Yesterday's intervals may run past midnight into today.
        [date.yesterday().ok(), Some(date)]
            .into_iter()
            .flatten()
            .flat_map(|day| self.spans(day))
            .any(|(start, end)| start <= instant && instant < end)
    }

    /// The first instant at or after `at` when the group is open (`at` itself when open now); `None` when it
    /// does not open within the next two years (an empty schedule never opens).
    pub fn next_opening(&self, at: Timestamp) -> Option<Timestamp> {
        if self.is_open(at) {
            return Some(at);
        }
        let instant = instant(at)?;
        let mut day = self.time_zone.to_datetime(instant).date().yesterday().ok()?;
        for _ in 0..LOOKAHEAD_DAYS {
            // Each day's intervals start within that local day, so the first day with a later start has the answer.
            if let Some(start) = self
                .spans(day)
                .into_iter()
                .map(|(start, _)| start)
                .filter(|s| *s > instant)
                .min()
            {
                return u64::try_from(start.as_millisecond()).ok().map(Timestamp);
            }
            day = day.tomorrow().ok()?;
        }
        None
    }

    /// How many milliseconds of `[from, to)` fall inside the schedule's opening intervals (0 when `to` is not
    /// after `from`): the working-hours length of a wait or a handling time (`docs/statistics.md`). Looks at
    /// most about two years (734 days) past `from`; a longer span counts only those.
    pub fn open_millis(&self, from: Timestamp, to: Timestamp) -> u64 {
        let (Some(start), Some(end)) = (instant(from), instant(to)) else {
            return 0;
        };
        if end <= start {
            return 0;
        }
        let Ok(mut day) = self.time_zone.to_datetime(start).date().yesterday() else {
            return 0;
        };
        let last = self.time_zone.to_datetime(end).date();
        let mut spans = Vec::new();
        for _ in 0..LOOKAHEAD_DAYS {
            if day > last {
                break;
            }
            // Clipped to [from, to); yesterday's crossing intervals may overlap today's, so merged below.
            spans.extend(
                self.spans(day)
                    .into_iter()
                    .map(|(s, e)| (s.max(start), e.min(end)))
                    .filter(|(s, e)| s < e),
            );
            let Ok(next) = day.tomorrow() else { break };
            day = next;
        }
        spans.sort();
        let mut total: i64 = 0;
        let mut reach: Option<jiff::Timestamp> = None;
        for (s, e) in spans {
            let s = reach.map_or(s, |r| s.max(r));
            if e > s {
                total += e.as_millisecond() - s.as_millisecond();
                reach = Some(e);
            }
        }
        u64::try_from(total).unwrap_or(0)
    }

    /// The intervals of `day` as instants `[start, end)`, skipping any a DST switch made empty.
    fn spans(&self, day: Date) -> Vec<(jiff::Timestamp, jiff::Timestamp)> {
        let list = match self.holidays.get(&day) {
            Some(hours) => hours,
            None => &self.weekly[weekday_index(day.weekday())],
        };
        list.iter()
            .filter_map(|interval| {
                let start = self.local(day, interval.open)?;
                let end_day = if interval.crosses_midnight() {
                    day.tomorrow().ok()?
                } else {
                    day
                };
                let end = self.local(end_day, interval.close)?;
                (start < end).then_some((start, end))
            })
            .collect()
    }

    /// The instant of a local time (minutes after midnight, 1440 = the next midnight) on `day`.
    fn local(&self, day: Date, minutes: u16) -> Option<jiff::Timestamp> {
        let (day, minutes) = if minutes >= MINUTES_PER_DAY {
            (day.tomorrow().ok()?, minutes - MINUTES_PER_DAY)
        } else {
            (day, minutes)
        };
        let hour = i8::try_from(minutes / 60).ok()?;
        let minute = i8::try_from(minutes % 60).ok()?;
        // `to_zoned` moves a time in a gap forward by the gap's length and takes a repeated time's first occurrence.
        day.at(hour, minute, 0, 0)
            .to_zoned(self.time_zone.clone())
            .ok()
            .map(|zoned| zoned.timestamp())
    }
}

fn instant(at: Timestamp) -> Option<jiff::Timestamp> {
    let millis = i64::try_from(at.as_millis()).ok()?;
    jiff::Timestamp::from_millisecond(millis).ok()
}

fn day_index(day: &str) -> Result<usize, HoursError> {
    DAY_KEYS
        .iter()
        .position(|key| *key == day)
        .ok_or_else(|| HoursError::UnknownDay(day.to_owned()))
}

fn weekday_index(weekday: Weekday) -> usize {
    usize::try_from(weekday.to_monday_zero_offset()).unwrap_or(0)
}

impl TryFrom<Raw> for WorkingHours {
    type Error = HoursError;

    fn try_from(raw: Raw) -> Result<Self, HoursError> {
        let mut hours = WorkingHours::new(&raw.time_zone)?;
        for (day, texts) in &raw.weekly {
            hours.weekly[day_index(day)?] = intervals(texts, "intervals in a day")?;
        }
        for holiday in &raw.holidays {
            let texts = holiday.hours.clone().unwrap_or_default();
            let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
            hours = hours.with_holiday(&holiday.date, &texts)?;
        }
        Ok(hours)
    }
}

impl From<WorkingHours> for Raw {
    fn from(hours: WorkingHours) -> Raw {
        let texts = |list: &[Interval]| list.iter().map(Interval::to_string).collect::<Vec<_>>();
        Raw {
            time_zone: hours.time_zone_name,
            weekly: DAY_KEYS
                .iter()
                .zip(&hours.weekly)
                .filter(|(_, list)| !list.is_empty())
                .map(|(day, list)| ((*day).to_owned(), texts(list)))
                .collect(),
            holidays: hours
                .holidays
                .iter()
                .map(|(date, list)| RawHoliday {
                    date: date.to_string(),
                    hours: (!list.is_empty()).then(|| texts(list)),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The instant of a local civil time in `zone`, as a kf timestamp.
    fn at(zone: &str, civil: &str) -> Timestamp {
        let dt: jiff::civil::DateTime = civil.parse().expect("civil time");
        let zoned = dt.to_zoned(TimeZone::get(zone).expect("zone")).expect("zoned");
        Timestamp(u64::try_from(zoned.timestamp().as_millisecond()).expect("after 1970"))
    }

    fn utc(text: &str) -> Timestamp {
        let ts: jiff::Timestamp = text.parse().expect("timestamp");
        Timestamp(u64::try_from(ts.as_millisecond()).expect("after 1970"))
    }

    fn berlin_office() -> WorkingHours {
        let mut hours = WorkingHours::new("Europe/Berlin").expect("zone");
        for day in ["mon", "tue", "wed", "thu", "fri"] {
            hours = hours.with_day(day, &["09:00-12:00", "13:00-17:00"]).expect("day");
        }
        hours
    }

    #[test]
    fn weekly_intervals_open_and_close() {
        let hours = berlin_office();
        // 2026-11-23 is a Monday.
        assert!(!hours.is_open(at("Europe/Berlin", "2026-11-23T08:59:59")));
        assert!(hours.is_open(at("Europe/Berlin", "2026-11-23T09:00")));
        assert!(hours.is_open(at("Europe/Berlin", "2026-11-23T11:59:59")));
        assert!(
            !hours.is_open(at("Europe/Berlin", "2026-11-23T12:30")),
            "lunch break"
        );
        assert!(hours.is_open(at("Europe/Berlin", "2026-11-23T16:59")));
        assert!(
            !hours.is_open(at("Europe/Berlin", "2026-11-23T17:00")),
            "the end is exclusive"
        );
        assert!(
            !hours.is_open(at("Europe/Berlin", "2026-11-28T10:00")),
            "saturday"
        );
        assert_eq!(
            hours.next_opening(at("Europe/Berlin", "2026-11-23T12:30")),
            Some(at("Europe/Berlin", "2026-11-23T13:00"))
        );
        assert_eq!(
            hours.next_opening(at("Europe/Berlin", "2026-11-27T18:00")),
            Some(at("Europe/Berlin", "2026-11-30T09:00")),
            "friday evening → monday morning"
        );
        let now = at("Europe/Berlin", "2026-11-23T10:00");
        assert_eq!(hours.next_opening(now), Some(now), "open now");
    }

    #[test]
    fn berlin_dst_switch_days_use_that_days_offset() {
        let mut hours = WorkingHours::new("Europe/Berlin").expect("zone");
        hours = hours
            .with_day("sun", &["01:00-04:00", "09:00-17:00"])
            .expect("day");
        // 2026-03-29 (Sunday): clocks go 02:00 CET → 03:00 CEST. 09:00 local is 07:00 UTC (not 08:00).
        assert!(!hours.is_open(utc("2026-03-29T06:59:00Z")));
        assert!(hours.is_open(utc("2026-03-29T07:00:00Z")));
        assert!(!hours.is_open(utc("2026-03-29T15:00:00Z")), "17:00 CEST");
        // 01:00 CET = 00:00 UTC; 04:00 CEST = 02:00 UTC: the interval lasts two real hours that night.
        assert!(hours.is_open(utc("2026-03-29T00:00:00Z")));
        assert!(hours.is_open(utc("2026-03-29T01:59:00Z")));
        assert!(!hours.is_open(utc("2026-03-29T02:00:00Z")));
        // 2026-10-25 (Sunday): 03:00 CEST → 02:00 CET. 09:00 local is 08:00 UTC; 01:00-04:00 lasts four hours.
        assert!(!hours.is_open(utc("2026-10-25T07:59:00Z")));
        assert!(hours.is_open(utc("2026-10-25T08:00:00Z")));
        assert!(hours.is_open(utc("2026-10-24T23:00:00Z")), "01:00 CEST");
        assert!(hours.is_open(utc("2026-10-25T02:59:00Z")), "03:59 CET");
        assert!(!hours.is_open(utc("2026-10-25T03:00:00Z")), "04:00 CET");
        assert_eq!(
            hours.next_opening(utc("2026-03-29T03:00:00Z")),
            Some(utc("2026-03-29T07:00:00Z"))
        );
    }

    #[test]
    fn new_york_gap_and_fold_resolve_to_real_instants() {
        // 2026-03-08: 02:00 EST → 03:00 EDT, so 02:30 does not exist; 2026-11-01: 01:00-02:00 happens twice.
        let hours = WorkingHours::new("America/New_York")
            .expect("zone")
            .with_day("sun", &["02:30-05:00"])
            .expect("day");
        // A start in the gap moves forward by the gap's hour: 03:30 EDT = 07:30 UTC.
        assert!(!hours.is_open(utc("2026-03-08T07:29:00Z")));
        assert!(hours.is_open(utc("2026-03-08T07:30:00Z")));
        assert!(!hours.is_open(utc("2026-03-08T09:00:00Z")), "05:00 EDT");
        assert_eq!(
            hours.next_opening(utc("2026-03-08T05:00:00Z")),
            Some(utc("2026-03-08T07:30:00Z"))
        );
        // Fall back: 02:30 EST = 07:30 UTC; 05:00 EST = 10:00 UTC.
        assert!(!hours.is_open(utc("2026-11-01T07:29:00Z")));
        assert!(hours.is_open(utc("2026-11-01T07:30:00Z")));
        assert!(hours.is_open(utc("2026-11-01T09:59:00Z")));
        assert!(!hours.is_open(utc("2026-11-01T10:00:00Z")));
    }

    #[test]
    fn intervals_crossing_midnight_reach_into_the_next_day() {
        let hours = WorkingHours::new("Europe/Berlin")
            .expect("zone")
            .with_day("fri", &["22:00-02:00"])
            .expect("day")
            .with_day("sat", &["20:00-24:00"])
            .expect("day");
        // 2026-11-27 is a Friday.
        assert!(!hours.is_open(at("Europe/Berlin", "2026-11-27T21:59")));
        assert!(hours.is_open(at("Europe/Berlin", "2026-11-27T23:00")));
        assert!(
            hours.is_open(at("Europe/Berlin", "2026-11-28T01:59")),
            "saturday morning, from friday"
        );
        assert!(!hours.is_open(at("Europe/Berlin", "2026-11-28T02:00")));
        assert!(hours.is_open(at("Europe/Berlin", "2026-11-28T23:59")));
        assert!(
            !hours.is_open(at("Europe/Berlin", "2026-11-29T00:00")),
            "24:00 closes saturday"
        );
        assert_eq!(
            hours.next_opening(at("Europe/Berlin", "2026-11-28T03:00")),
            Some(at("Europe/Berlin", "2026-11-28T20:00"))
        );
        let json = serde_json::to_value(&hours).expect("json");
        assert_eq!(json["weekly"]["fri"], serde_json::json!(["22:00-02:00"]));
        assert_eq!(json["weekly"]["sat"], serde_json::json!(["20:00-24:00"]));
    }

    #[test]
    fn holidays_close_or_replace_the_day() {
        let hours = berlin_office()
            .with_holiday("2026-12-25", &[])
            .expect("holiday")
            .with_holiday("2026-12-24", &["09:00-12:00"])
            .expect("holiday");
        // 2026-12-24 is a Thursday, 25 a Friday.
        assert!(hours.is_open(at("Europe/Berlin", "2026-12-24T10:00")));
        assert!(
            !hours.is_open(at("Europe/Berlin", "2026-12-24T14:00")),
            "half day"
        );
        assert!(
            !hours.is_open(at("Europe/Berlin", "2026-12-25T10:00")),
            "closed all day"
        );
        assert_eq!(
            hours.next_opening(at("Europe/Berlin", "2026-12-24T13:00")),
            Some(at("Europe/Berlin", "2026-12-28T09:00"))
        );
        assert!(hours.is_open(at("Europe/Berlin", "2026-12-23T10:00")));
    }

    #[test]
    fn open_millis_counts_only_opening_time_once() {
        let hours = berlin_office();
        let minute = 60_000;
        // Monday 08:00 to 14:00: 09-12 and 13-14 open.
        let (from, to) = (
            at("Europe/Berlin", "2026-11-23T08:00"),
            at("Europe/Berlin", "2026-11-23T14:00"),
        );
        assert_eq!(hours.open_millis(from, to), 240 * minute);
        assert_eq!(hours.open_millis(to, from), 0, "backwards");
        // Friday 16:00 to Monday 09:30: one hour on Friday, half an hour on Monday.
        let (from, to) = (
            at("Europe/Berlin", "2026-11-27T16:00"),
            at("Europe/Berlin", "2026-11-30T09:30"),
        );
        assert_eq!(hours.open_millis(from, to), 90 * minute);
        // Overlapping intervals (yesterday's crossing one and today's) count once.
        let night = WorkingHours::new("UTC")
            .and_then(|h| h.with_day("mon", &["22:00-03:00"]))
            .and_then(|h| h.with_day("tue", &["01:00-02:00"]))
            .expect("hours");
        let (from, to) = (utc("2026-11-23T00:00:00Z"), utc("2026-11-25T00:00:00Z"));
        assert_eq!(night.open_millis(from, to), 300 * minute);
    }

    #[test]
    fn an_empty_schedule_is_always_closed() {
        let hours = WorkingHours::new("UTC").expect("zone");
        let now = utc("2026-06-01T12:00:00Z");
        assert!(!hours.is_open(now));
        assert_eq!(hours.next_opening(now), None);
        let parsed: WorkingHours = serde_json::from_str(r#"{"time_zone": "UTC"}"#).expect("parse");
        assert_eq!(parsed, hours);
    }

    #[test]
    fn serde_form_round_trips_and_is_validated() {
        let text = r#"{"time_zone":"Europe/Berlin","weekly":{"mon":["09:00-12:00","13:00-17:00"],"sun":["22:00-02:00"]},"holidays":[{"date":"2026-12-24","hours":["09:00-12:00"]},{"date":"2026-12-25"}]}"#;
        let hours: WorkingHours = serde_json::from_str(text).expect("parse");
        assert_eq!(hours.time_zone(), "Europe/Berlin");
        assert_eq!(serde_json::to_string(&hours).expect("json"), text);
        let refused = |json: &str| {
            serde_json::from_str::<WorkingHours>(json)
                .expect_err(json)
                .to_string()
        };
        assert!(refused(r#"{"time_zone":"Mars/Olympus"}"#).contains("unknown time zone"));
        assert!(refused(r#"{"time_zone":"UTC","weekly":{"moon":[]}}"#).contains("unknown day"));
        for bad in [
            "9-17",
            "09:00-09:00",
            "25:00-26:00",
            "09:60-10:00",
            "24:00-02:00",
            "09:00",
        ] {
            let json = format!(r#"{{"time_zone":"UTC","weekly":{{"mon":["{bad}"]}}}}"#);
            assert!(refused(&json).contains("invalid interval"), "{bad}");
        }
        assert!(
            refused(r#"{"time_zone":"UTC","holidays":[{"date":"2026-02-30"}]}"#).contains("invalid date")
        );
        assert!(
            refused(r#"{"time_zone":"UTC","holidays":[{"date":"2026-01-01"},{"date":"2026-01-01"}]}"#)
                .contains("twice")
        );
        let many = vec!["01:00-02:00"; MAX_INTERVALS_PER_DAY + 1];
        assert!(matches!(
            WorkingHours::new("UTC").expect("zone").with_day("mon", &many),
            Err(HoursError::TooMany { .. })
        ));
        assert!(refused(r#"{"time_zone":"UTC","extra":1}"#).contains("unknown field"));
    }
}
