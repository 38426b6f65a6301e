namespace Tracker.ApiService.Usage;

/// <summary>
/// The common table expressions that give one client's detailed rollup cells over a window of whole UTC hours,
/// <c>cells</c>: a whole UTC day of the window that <see cref="DailyCompaction"/> has folded, and that no stale mark
/// names for the client, is read from <c>usage_daily_details</c> (one row per cell of the day), the rest of the window
/// from <c>usage_hourly_details</c>: the hours before the first folded day and after the last, and those of any day
/// between them that is not folded (rare: a stale day), looked up hour by hour. Each table is read by ranges of its
/// primary key's prefix bounded by values computed first, which PostgreSQL plans the same way whatever it guesses of
/// them: a generic plan of a join to the window's days instead read every hourly cell of the client, and a lookup
/// per day or hour costs an index descent each (docs/performance.md, runs 35 and 36). One statement reads it
/// all in one snapshot, so a day folded meanwhile is read either before or after, never twice or not at all.
/// </summary>
internal static class RollupCells
{
    /// <summary>The expression of a daily row's time: the start of its UTC day.</summary>
    private const string DayStart = "(day::timestamp AT TIME ZONE 'UTC')";

    /// <summary>
    /// The CTEs (<c>window_days</c>, <c>stale_days</c>, <c>folded_days</c>, <c>folded_span</c>, <c>unfolded_days</c>,
    /// <c>cells</c>) for the client <paramref name="client"/> over
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
        stale_days AS MATERIALIZED (
            SELECT day FROM usage_daily_stale
            WHERE client_id = {client} AND day >= ({start} AT TIME ZONE 'UTC')::date AND day <= ({end} AT TIME ZONE 'UTC')::date),
        folded_days AS MATERIALIZED (
            SELECT day, day_start FROM window_days
            WHERE day_start >= {start} AND day_start + interval '24 hours' <= {end}
              AND day <= (SELECT compacted_through FROM usage_daily_compaction)
              AND day <> ALL (ARRAY(SELECT day FROM stale_days))
              {(dayFits.Length > 0 ? $"AND {dayFits}" : "")}),
        folded_span AS MATERIALIZED (
            SELECT coalesce(min(day_start), {end}) AS first_start, coalesce(max(day_start) + interval '24 hours', {end}) AS last_end
            FROM folded_days),
        unfolded_days AS MATERIALIZED (
            SELECT day, day_start FROM window_days
            WHERE day_start >= (SELECT first_start FROM folded_span) AND day_start < (SELECT last_end FROM folded_span)
              AND day <> ALL (ARRAY(SELECT day FROM folded_days))),
        cells AS MATERIALIZED (
            SELECT {columns(DayStart)}
            FROM usage_daily_details
            WHERE client_id = {client} {filter}
              AND day >= (SELECT (first_start AT TIME ZONE 'UTC')::date FROM folded_span)
              AND day < (SELECT (last_end AT TIME ZONE 'UTC')::date FROM folded_span)
              AND day <> ALL (ARRAY(SELECT day FROM unfolded_days))
            UNION ALL
            SELECT {columns("hour_start")}
            FROM usage_hourly_details
            WHERE client_id = {client} {filter} AND hour_start >= {start} AND hour_start < (SELECT first_start FROM folded_span)
            UNION ALL
            SELECT {columns("hour_start")}
            FROM usage_hourly_details
            WHERE client_id = {client} {filter} AND hour_start >= (SELECT last_end FROM folded_span) AND hour_start < {end}
            UNION ALL
            SELECT {columns("hour_start")}
            FROM usage_hourly_details
            WHERE client_id = {client} {filter} AND hour_start = ANY (ARRAY(
                SELECT hour FROM unfolded_days
                CROSS JOIN generate_series(day_start, day_start + interval '23 hours', interval '1 hour') AS hour)))
        """;
}
