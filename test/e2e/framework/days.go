package framework

import "time"

// This file holds the days the suites write and compare: kube-apiserver
// writes its legacy-token labels in UTC days (DayFormat), and so do the
// plugin's marks.

// DaysAgo is now, in UTC, n days back.
func DaysAgo(n int) time.Time { return time.Now().UTC().AddDate(0, 0, -n) }

// Day is today (kube-apiserver's UTC day) plus offset days, as YYYY-MM-DD.
func Day(offset int) string { return time.Now().UTC().AddDate(0, 0, offset).Format(DayFormat) }
