namespace Tracker.ApiService.Usage;

/// <summary>
/// The common table expressions that give one client's detailed rollup cells over a window of whole UTC hours,
/// <c>cells</c>: a whole UTC day of the window that <see cref="DailyCompaction"/> has folded, and that no stale mark
/// names for the client, is read from <c>usage_daily_details</c> (one row per cell of the day), the rest of the window
/// from <c>usage_hourly_details</c>, hour by hour. Both are lookups of the primary key's prefix by a list of days or
/// hours (<c>= ANY</c>), which PostgreSQL plans the same way whatever it guesses of the lists: a generic plan of a join
/// to the days instead read every hourly cell of the client (docs/performance.md, run 35). One statement reads it
/// all in one snapshot, so a day folded meanwhile is read either before or after, never twice or not at all.
/// </summary>
internal static class RollupCells
{
    /// <summary>The expression of a daily row's time: the start of its UTC day.</summary>
    private const string DayStart = "(day::timestamp AT TIME ZONE 'UTC')";

    /// <summary>
    /// The CTEs (<c>window_days</c>, <c>folded_days</c>, <c>cells</c>) for the client <paramref name="client"/> over
    /// [<paramref name="start"/>, <paramref name="end"/>) (SQL expressions, usually parameters; whole UTC hours).
    /// </summary>
    /// <param name="columns">The select list of a cell, given the expression of its time (an hour's or a day's start).</param>
    /// <param name="filter">More conditions on a cell's own columns, each starting with AND; none when empty.</param>
    /// <param name="dayFits">
    /// A condition on <c>day_start</c> (the start of a UTC day) that a folded day must meet to be read whole: a series
    /// reads a day whole only when it falls in one bucket. None when empty.
    /// </param>
    public static string Sql(Func<string, string> columns, string client, string start, string end, string filter = "", string dayFits = "") => $"""
        window_days AS MATERIALIZED (
            SELECT day, day::timestamp AT TIME ZONE 'UTC' AS day_start
            FROM (SELECT ({start} AT TIME ZONE 'UTC')::date + day_offset AS day
                  FROM generate_series(0, (({end} - interval '1 microsecond') AT TIME ZONE 'UTC')::date - ({start} AT TIME ZONE 'UTC')::date)
                      AS day_offset) AS days),
        folded_days AS MATERIALIZED (
            SELECT day FROM window_days
            WHERE day_start >= {start} AND day_start + interval '24 hours' <= {end}
              AND day <= (SELECT compacted_through FROM usage_daily_compaction)
              AND NOT EXISTS (SELECT FROM usage_daily_stale AS stale WHERE stale.client_id = {client} AND stale.day = window_days.day)
              {(dayFits.Length > 0 ? $"AND {dayFits}" : "")}),
        cells AS MATERIALIZED (
            SELECT {columns(DayStart)}
            FROM usage_daily_details
            WHERE client_id = {client} AND day = ANY (ARRAY(SELECT day FROM folded_days)) {filter}
            UNION ALL
            SELECT {columns("hour_start")}
            FROM usage_hourly_details
            WHERE client_id = {client} {filter} AND hour_start = ANY (ARRAY(
                SELECT hour
                FROM window_days
                CROSS JOIN generate_series(greatest(day_start, {start}), least(day_start + interval '24 hours', {end}) - interval '1 hour', interval '1 hour') AS hour
                WHERE day <> ALL (ARRAY(SELECT day FROM folded_days)))))
        """;
}
