using System.Buffers;
using System.Globalization;
using Npgsql;
using NpgsqlTypes;
using Tracker.Data;
using Tracker.Data.Entities;

namespace Tracker.ApiService.Ingest;

/// <summary>
/// One batch's contribution to the detailed hourly rollups (<c>usage_hourly_details</c>): its stored logs counted
/// per cell (client, UTC hour, endpoint, method, status class, key; see <see cref="RollupDimensions"/>) with a latency
/// sketch each, added to the table by one statement in the batch's transaction, one row per cell. The statement also
/// caps each client-hour's distinct endpoints at <see cref="RollupDimensions.MaxEndpointsPerHour"/>: an endpoint
/// the hour does not know yet is admitted while there is room (in endpoint order within a batch), later ones are
/// counted under <see cref="HourlyUsageDetail.OtherEndpoint"/>, and it returns the names its cells were stored under.
/// A batch naming only endpoints that <see cref="AdmittedEndpoints"/> knows are admitted skips the cap's lookups.
/// Within an instance, one client's logs are committed by one writer loop at a time (<see cref="FairBacklog"/>);
/// only a batch written again after an unknown commit outcome may commit beside a later one of the same client, and
/// both may then fill the last places, so an hour may then hold a few more. Instances do not serialise their commits
/// (nothing locks a client-hour), so several instances committing one client's logs at once may each fill the same
/// last places: docs/api.md states that bound.
/// </summary>
public sealed class DetailedRollup
{
    private const string InsertCells = """
        INSERT INTO usage_hourly_details (client_id, hour_start, endpoint, method, status_class, api_key_id, request_count, latency)
        """;

    private static readonly string AddToCells = $"""
        ON CONFLICT (client_id, hour_start, endpoint, method, status_class, api_key_id) DO UPDATE SET
            request_count = usage_hourly_details.request_count + excluded.request_count,
            latency = CASE
                WHEN cardinality(usage_hourly_details.latency) + cardinality(excluded.latency) > {LatencySketch.CompactAbove}
                THEN {LatencySketch.CompactFunction}(usage_hourly_details.latency || excluded.latency)
                ELSE usage_hourly_details.latency || excluded.latency END
        """;

    private const string Cells = """
        SELECT client_id, hour_start, endpoint, method, status_class, api_key_id, request_count, latency::bigint[] AS latency
        FROM unnest(@client_ids, @hour_starts, @endpoints, @methods, @status_classes, @api_key_ids, @counts, @latencies)
            AS cell(client_id, hour_start, endpoint, method, status_class, api_key_id, request_count, latency)
        """;

    // Rows are inserted in key order, as every rollup is, so concurrent writers lock them in the same order.
    // A batch's cells that end up in "{other}" together are summed first: one statement cannot update a row twice.
    private static readonly string CappedUpsert = $$"""
        WITH cells AS ({{Cells}}),
        known AS (
            SELECT name.client_id, name.hour_start, name.endpoint
            FROM usage_hourly_endpoints AS name
            JOIN (SELECT DISTINCT client_id, hour_start FROM cells) AS hours USING (client_id, hour_start)),
        fresh AS (
            SELECT batch.*, row_number() OVER (PARTITION BY batch.client_id, batch.hour_start ORDER BY batch.endpoint) AS rank
            FROM (SELECT DISTINCT client_id, hour_start, endpoint FROM cells WHERE endpoint <> '{{HourlyUsageDetail.OtherEndpoint}}') AS batch
            WHERE NOT EXISTS (SELECT FROM known
                WHERE (known.client_id, known.hour_start, known.endpoint) = (batch.client_id, batch.hour_start, batch.endpoint))),
        taken AS (SELECT client_id, hour_start, count(*) AS names FROM known GROUP BY client_id, hour_start),
        admitted AS (
            SELECT fresh.client_id, fresh.hour_start, fresh.endpoint
            FROM fresh LEFT JOIN taken USING (client_id, hour_start)
            WHERE fresh.rank + coalesce(taken.names, 0) <= {{RollupDimensions.MaxEndpointsPerHour}}),
        named AS (
            INSERT INTO usage_hourly_endpoints (client_id, hour_start, endpoint)
            SELECT * FROM admitted ORDER BY 1, 2, 3
            ON CONFLICT DO NOTHING),
        stored AS (
            {{InsertCells}}
            SELECT cell.client_id, cell.hour_start, coalesce(kept.endpoint, '{{HourlyUsageDetail.OtherEndpoint}}'),
                   cell.method, cell.status_class, cell.api_key_id, sum(cell.request_count)::bigint, {{LatencySketch.ConcatAggregate}}(cell.latency)
            FROM cells AS cell
            LEFT JOIN (SELECT * FROM known UNION ALL SELECT * FROM admitted) AS kept
                ON (kept.client_id, kept.hour_start, kept.endpoint) = (cell.client_id, cell.hour_start, cell.endpoint)
            GROUP BY 1, 2, 3, 4, 5, 6
            ORDER BY 1, 2, 3, 4, 5, 6
            {{AddToCells}}
            RETURNING client_id, hour_start, endpoint)
        SELECT DISTINCT client_id, hour_start, endpoint FROM stored WHERE endpoint <> '{{HourlyUsageDetail.OtherEndpoint}}'
        """;

    // Every cell's endpoint is already admitted (or "{other}"): the cells are the rows, one each, in key order.
    private static readonly string UncappedUpsert = $"""
        {InsertCells}
        {Cells}
        ORDER BY 1, 2, 3, 4, 5, 6
        {AddToCells}
        """;

    // Marks the batch's past UTC days stale for the daily tier (DailyCompaction), by the database's clock: the same
    // clock the compaction waits on, so a day it has folded (an hour past its end, at least) is marked by any
    // transaction that commits a cell of it afterwards. A mark already there gets a new version, which also locks it
    // until this transaction ends: the compaction removes only marks whose version it read before folding, so it
    // cannot remove this one for a fold that did not see these cells. Runs after the cells' upsert, its rows in the
    // order the compaction locks marks in (day, then client), so the two cannot deadlock.
    private const string MarkStaleDays = """
        INSERT INTO usage_daily_stale (client_id, day, version)
        SELECT client_id, day, 1 FROM unnest(@client_ids, @days) AS marked(client_id, day)
        WHERE day < (statement_timestamp() AT TIME ZONE 'UTC')::date
        ORDER BY day, client_id
        ON CONFLICT (client_id, day) DO UPDATE SET version = usage_daily_stale.version + 1
        """;

    /// <summary>How far this machine's clock may be behind PostgreSQL's without a stale day going unmarked.</summary>
    public static readonly TimeSpan ClockSkew = TimeSpan.FromHours(1);

    private readonly Dictionary<CellKey, Cell> _cells = [];

    // The batch's endpoint names, each kept once: logs naming /orders/1, /orders/2, … share one "/orders/{id}", which
    // is looked up by its characters and built only the first time (a string per log was most of what counting cost).
    private readonly Dictionary<string, string> _endpoints;
    private readonly Dictionary<string, string>.AlternateLookup<ReadOnlySpan<char>> _endpointsByCharacters;

    public DetailedRollup()
    {
        _endpoints = [];
        _endpointsByCharacters = _endpoints.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    /// <summary>Counts a stored log in its cell.</summary>
    public void Add(LogRecord log, DateTime hourStart)
    {
        var key = new CellKey(log.ClientId, hourStart, EndpointName(log.Endpoint), RollupDimensions.Method(log.Method),
            RollupDimensions.StatusClass(log.StatusCode), log.ApiKeyId);
        if (!_cells.TryGetValue(key, out var cell))
        {
            cell = new Cell();
            _cells.Add(key, cell);
        }

        cell.Count++;
        if (log.DurationMs is { } duration)
        {
            (cell.Latency ??= new LatencySketch()).Add(duration);
        }
    }

    /// <summary>
    /// The statements that add the counted cells to the table, none when no log was counted. Unless every cell's
    /// endpoint is in <paramref name="admitted"/>, the first applies the cap and returns rows (client id, hour,
    /// endpoint): the names its cells were stored under, to remember once the transaction has committed. The second
    /// marks the cells' past days stale for the daily tier, and returns nothing; it is left out when every cell is of
    /// the UTC day of <paramref name="utcNow"/> and the day's last hour has not begun (the database's clock decides
    /// what is past, and this one may be up to <see cref="ClockSkew"/> behind it).
    /// </summary>
    public IEnumerable<NpgsqlBatchCommand> ToCommands(AdmittedEndpoints admitted, DateTimeOffset utcNow)
    {
        if (_cells.Count == 0)
        {
            yield break;
        }

        yield return Upsert(admitted);
        var today = DateOnly.FromDateTime((utcNow + ClockSkew).UtcDateTime);
        if (_cells.Keys.Any(key => DateOnly.FromDateTime(key.HourStart) < today))
        {
            yield return StaleDays();
        }
    }

    private NpgsqlBatchCommand Upsert(AdmittedEndpoints admitted)
    {
        var rows = _cells.Count;
        var clientIds = new Guid[rows];
        var hourStarts = new DateTime[rows];
        var endpoints = new string[rows];
        var methods = new string[rows];
        var statusClasses = new short[rows];
        var apiKeyIds = new Guid[rows];
        var counts = new long[rows];
        var latencies = new string[rows];
        var row = 0;
        foreach (var (key, cell) in _cells)
        {
            clientIds[row] = key.ClientId;
            hourStarts[row] = key.HourStart;
            endpoints[row] = key.Endpoint;
            methods[row] = key.Method;
            statusClasses[row] = key.StatusClass;
            apiKeyIds[row] = key.ApiKeyId;
            counts[row] = cell.Count;
            latencies[row] = ArrayLiteral(cell.Latency);
            row++;
        }

        var command = new NpgsqlBatchCommand(AllAdmitted(admitted) ? UncappedUpsert : CappedUpsert);
        command.Parameters.Add(new NpgsqlParameter<Guid[]>("client_ids", clientIds));
        command.Parameters.Add(new NpgsqlParameter<DateTime[]>("hour_starts", hourStarts) { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz });
        command.Parameters.Add(new NpgsqlParameter<string[]>("endpoints", endpoints) { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Varchar });
        command.Parameters.Add(new NpgsqlParameter<string[]>("methods", methods) { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Varchar });
        command.Parameters.Add(new NpgsqlParameter<short[]>("status_classes", statusClasses));
        command.Parameters.Add(new NpgsqlParameter<Guid[]>("api_key_ids", apiKeyIds));
        command.Parameters.Add(new NpgsqlParameter<long[]>("counts", counts));
        // Sketches differ in length, and PostgreSQL arrays of arrays must be rectangular: each travels as text.
        command.Parameters.Add(new NpgsqlParameter<string[]>("latencies", latencies) { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        return command;
    }

    private NpgsqlBatchCommand StaleDays()
    {
        var days = new HashSet<(Guid ClientId, DateOnly Day)>();
        foreach (var key in _cells.Keys)
        {
            days.Add((key.ClientId, DateOnly.FromDateTime(key.HourStart)));
        }

        var command = new NpgsqlBatchCommand(MarkStaleDays);
        command.Parameters.Add(new NpgsqlParameter<Guid[]>("client_ids", [.. days.Select(day => day.ClientId)]));
        command.Parameters.Add(new NpgsqlParameter<DateOnly[]>("days", [.. days.Select(day => day.Day)]));
        return command;
    }

    private string EndpointName(string endpoint)
    {
        Span<char> buffer = stackalloc char[HourlyUsageDetail.EndpointMaxLength];
        var name = RollupDimensions.Endpoint(endpoint, buffer);
        if (!_endpointsByCharacters.TryGetValue(name, out var kept))
        {
            kept = RollupDimensions.AsString(name, endpoint);
            _endpoints.Add(kept, kept);
        }

        return kept;
    }

    private bool AllAdmitted(AdmittedEndpoints admitted)
    {
        foreach (var key in _cells.Keys)
        {
            if (key.Endpoint != HourlyUsageDetail.OtherEndpoint && !admitted.Contains(key.ClientId, key.HourStart, key.Endpoint))
            {
                return false;
            }
        }

        return true;
    }

    private static string ArrayLiteral(LatencySketch? sketch)
    {
        var packed = sketch?.Pack() ?? [];
        if (packed.Length == 0)
        {
            return "{}";
        }

        // Formatted into one rented buffer: a long takes at most 20 characters, and each is followed by a separator.
        var text = ArrayPool<char>.Shared.Rent(1 + packed.Length * 21);
        try
        {
            text[0] = '{';
            var length = 1;
            foreach (var element in packed)
            {
                element.TryFormat(text.AsSpan(length), out var written, provider: CultureInfo.InvariantCulture);
                length += written;
                text[length++] = ',';
            }

            text[length - 1] = '}';
            return new string(text, 0, length);
        }
        finally
        {
            ArrayPool<char>.Shared.Return(text);
        }
    }

    private readonly record struct CellKey(Guid ClientId, DateTime HourStart, string Endpoint, string Method, short StatusClass, Guid ApiKeyId);

    private sealed class Cell
    {
        public long Count;
        public LatencySketch? Latency;
    }
}
