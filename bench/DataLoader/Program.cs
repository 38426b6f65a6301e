using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Npgsql;
using NpgsqlTypes;
using Microsoft.Extensions.Logging.Abstractions;
using Tracker.ApiService.Ingest;
using Tracker.ApiService.Usage;
using Tracker.Data;

// Loads history for the analytics benchmark: N clients and M logs over the last D days, written with binary COPY (two
// streams in parallel), with the rollups ingest and the hourly totals' fold would have written for them (usage_hourly,
// and the detailed cells of usage_hourly_details with their latency sketches and usage_hourly_endpoints, named by the
// API's own RollupDimensions), then VACUUM ANALYZE so the planner and index-only scans see the real volume and
// autovacuum has nothing left to do.
// Clients are not equally busy: client k (from 1) sends in proportion to 1/sqrt(k), so the busiest sends about 50
// times what the quietest does (10,000 clients, 10 million logs: from about 50,000 logs down to 1,000). Each sends
// with one to three API keys, to a dozen endpoints with ids in their paths, with status codes and durations spread
// as an API's are (mostly fast 2xx, some 4xx, slower 5xx), and one log in twenty from an old client without either.
// Writes one JWT per client (signed with the API's key, as the API would issue it) to a file, for the load
// generator. With --logs 0 it only creates the clients and their tokens: the many-key scenarios' tenants, who get
// their API keys from the API itself (bench/api-keys.py); registering them through the API would spend minutes
// of password hashing.
// Usage: DataLoader --connection CS --signing-key K --tokens FILE [--clients 10000] [--logs 10000000] [--days 89]
var options = new Dictionary<string, string>();
for (var index = 0; index + 1 < args.Length; index += 2)
{
    options[args[index].TrimStart('-')] = args[index + 1];
}

var connectionString = options["connection"];
var signingKey = options["signing-key"];
var clientCount = int.Parse(options.GetValueOrDefault("clients", "10000"), CultureInfo.InvariantCulture);
var logCount = long.Parse(options.GetValueOrDefault("logs", "10000000"), CultureInfo.InvariantCulture);
var days = int.Parse(options.GetValueOrDefault("days", "89"), CultureInfo.InvariantCulture);

// No command timeout: finishing a COPY of millions of rows waits for PostgreSQL to catch up with what was sent, which
// took over Npgsql's default 30 s in a slow spell (run 25 aborted there).
await using var dataSource = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(connectionString) { CommandTimeout = 0 }.ConnectionString);
var now = DateTimeOffset.UtcNow;
var clients = Enumerable.Range(0, clientCount).Select(_ => Guid.NewGuid()).ToArray();
var stopwatch = Stopwatch.StartNew();

await using (var connection = await dataSource.OpenConnectionAsync())
await using (var import = await connection.BeginBinaryImportAsync(
    "COPY clients (id, name, email, normalized_email, password_hash, created_at, updated_at) FROM STDIN (FORMAT BINARY)"))
{
    for (var index = 0; index < clients.Length; index++)
    {
        var email = $"load-{index}-{clients[index]:N}@bench.example";
        await import.StartRowAsync();
        await import.WriteAsync(clients[index], NpgsqlDbType.Uuid);
        await import.WriteAsync($"Loaded client {index}", NpgsqlDbType.Varchar);
        await import.WriteAsync(email, NpgsqlDbType.Varchar);
        await import.WriteAsync(email, NpgsqlDbType.Varchar);
        // Not a valid hash: these clients never log in; the benchmark signs their tokens itself.
        await import.WriteAsync("bench-loaded-no-login", NpgsqlDbType.Text);
        await import.WriteAsync(now, NpgsqlDbType.TimestampTz);
        await import.WriteAsync(now, NpgsqlDbType.TimestampTz);
    }

    await import.CompleteAsync();
}

Console.Error.WriteLine($"{clients.Length:N0} clients in {stopwatch.Elapsed.TotalSeconds:F1} s");
if (logCount > 0)
{
    await LoadLogsAsync();
}

var key = Encoding.UTF8.GetBytes(signingKey);
var header = Base64Url("""{"alg":"HS256","typ":"JWT"}"""u8.ToArray());
await using (var tokens = new StreamWriter(options["tokens"]))
{
    var issuedAt = now.ToUnixTimeSeconds();
    foreach (var client in clients)
    {
        var payload = Base64Url(JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["iss"] = "tracker", ["aud"] = "tracker-api", ["sub"] = client.ToString(), ["jti"] = Guid.NewGuid().ToString("N"),
            ["iat"] = issuedAt, ["nbf"] = issuedAt, ["exp"] = issuedAt + 4 * 3600,
        }));
        var signature = Base64Url(HMACSHA256.HashData(key, Encoding.ASCII.GetBytes(header + "." + payload)));
        await tokens.WriteLineAsync($"{header}.{payload}.{signature}");
    }
}

return 0;

async Task LoadLogsAsync()
{
    const int Streams = 2;
    var weights = Enumerable.Range(1, clients.Length).Select(rank => 1 / Math.Sqrt(rank)).ToArray();
    var scale = logCount / weights.Sum();
    var counts = weights.Select(weight => (long)(weight * scale)).ToArray();
    // What rounding down left over goes to the busiest clients, so the total is exact.
    for (var extra = logCount - counts.Sum(); extra > 0; extra--)
    {
        counts[(extra - 1) % counts.Length]++;
    }

    var written = new long[Streams];
    await Task.WhenAll(Enumerable.Range(0, Streams).Select(stream => Task.Run(async () =>
    {
        var random = new Random(stream + 1);
        var history = new HistoryWriter(random, now, TimeSpan.FromDays(days));
        await using var logs = await Import(
            "COPY logs (client_id, api_key_id, occurred_at, ip_address, method, endpoint, status_code, duration_ms) FROM STDIN (FORMAT BINARY)");
        await using var details = await Import(
            "COPY usage_hourly_details (client_id, hour_start, endpoint, method, status_class, api_key_id, request_count, latency) FROM STDIN (FORMAT BINARY)");
        await using var names = await Import("COPY usage_hourly_endpoints (client_id, hour_start, endpoint) FROM STDIN (FORMAT BINARY)");
        await using var hourly = await Import("COPY usage_hourly (client_id, hour_start, request_count) FROM STDIN (FORMAT BINARY)");
        for (var client = stream; client < clients.Length; client += Streams)
        {
            written[stream] += await history.WriteClientAsync(
                clients[client], counts[client], logs.Importer, details.Importer, names.Importer, hourly.Importer);
        }

        foreach (var import in new[] { logs, details, names, hourly })
        {
            await import.Importer.CompleteAsync();
        }
    })));
    Console.Error.WriteLine($"{written.Sum():N0} logs and their rollups in {stopwatch.Elapsed.TotalSeconds:F1} s");

    // The API folds past days on a timer, and may have folded some of these days while they were being written, or
    // before (its warm-up's logs): the loader marks nothing stale, so what was folded is forgotten and the history is
    // folded now, by the same code, before anything is measured.
    var compaction = new DailyCompaction(dataSource, TimeProvider.System, NullLogger<DailyCompaction>.Instance);
    await compaction.ForgetAsync(CancellationToken.None);
    var (folded, _) = await compaction.RunOnceAsync(CancellationToken.None);
    Console.Error.WriteLine($"{folded} days folded in {stopwatch.Elapsed.TotalSeconds:F1} s");

    await using (var connection = await dataSource.OpenConnectionAsync())
    {
        // One statement per command: VACUUM refuses to run in the implicit transaction of a multi-statement command.
        // The logs are vacuumed too, or autovacuum would do it during the measurements that follow.
        foreach (var maintenance in new[]
        {
            "VACUUM ANALYZE usage_hourly", "VACUUM ANALYZE usage_hourly_details", "VACUUM ANALYZE usage_hourly_endpoints",
            "VACUUM ANALYZE usage_daily_details", "VACUUM ANALYZE usage_daily_compaction",
            "VACUUM ANALYZE clients", "VACUUM ANALYZE logs",
        })
        {
            await using var command = new NpgsqlCommand(maintenance, connection) { CommandTimeout = 0 };
            await command.ExecuteNonQueryAsync();
        }
    }

    Console.Error.WriteLine($"statistics in {stopwatch.Elapsed.TotalSeconds:F1} s");
}

async Task<ImportStream> Import(string copy)
{
    var connection = await dataSource.OpenConnectionAsync();
    return new ImportStream(connection, await connection.BeginBinaryImportAsync(copy));
}

static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

/// <summary>A COPY in progress and the connection it holds.</summary>
internal sealed record ImportStream(NpgsqlConnection Connection, NpgsqlBinaryImporter Importer) : IAsyncDisposable
{
    public async ValueTask DisposeAsync()
    {
        await Importer.DisposeAsync();
        await Connection.DisposeAsync();
    }
}

/// <summary>Writes one client's logs and the rollup rows ingest would have written for them.</summary>
internal sealed class HistoryWriter(Random random, DateTimeOffset now, TimeSpan window)
{
    // Path, method and share of the traffic; {n} is an id.
    private static readonly (string Path, string Method, int Weight)[] Endpoints =
    [
        ("/v1/orders", "GET", 24), ("/v1/orders/{n}", "GET", 18), ("/v1/orders", "POST", 6), ("/v1/orders/{n}", "PATCH", 2),
        ("/v1/users/{n}", "GET", 12), ("/v1/users/{n}/orders", "GET", 5), ("/v1/products", "GET", 10), ("/v1/products/{n}", "GET", 9),
        ("/v1/search?q={n}", "GET", 6), ("/v1/carts/{n}/items", "POST", 4), ("/v1/carts/{n}", "DELETE", 1), ("/health", "GET", 3),
    ];

    private static readonly (short Status, int Weight)[] Statuses =
        [(200, 820), (201, 40), (204, 15), (304, 20), (400, 25), (401, 10), (404, 40), (429, 5), (500, 15), (503, 10)];

    private readonly Dictionary<(DateTime Hour, string Endpoint, string Method, short StatusClass, Guid Key), (long Count, LatencySketch Latency)> _cells = [];
    private readonly SortedDictionary<DateTime, long> _hours = [];

    /// <summary>Writes <paramref name="count"/> logs of <paramref name="client"/>, then its rollup rows; returns <paramref name="count"/>.</summary>
    public async Task<long> WriteClientAsync(
        Guid client, long count, NpgsqlBinaryImporter logs, NpgsqlBinaryImporter details, NpgsqlBinaryImporter names, NpgsqlBinaryImporter hourly)
    {
        _cells.Clear();
        _hours.Clear();
        var keys = Enumerable.Range(0, 1 + random.Next(3)).Select(_ => Guid.NewGuid()).ToArray();
        for (var log = 0L; log < count; log++)
        {
            var at = now.AddTicks(-random.NextInt64(window.Ticks));
            var (path, method, _) = Pick(Endpoints, endpoint => endpoint.Weight);
            var endpoint = path.Replace("{n}", random.Next(1, 100_000).ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal);
            var key = keys[random.Next(keys.Length)];
            short? status = null;
            double? duration = null;
            if (random.Next(20) != 0)
            {
                status = Pick(Statuses, entry => entry.Weight).Status;
                // Log-normal around 40 ms (5xx around 400 ms), to the microsecond, as a client would measure it.
                duration = Math.Round(Math.Exp(Math.Log(status >= 500 ? 400 : 40) + 0.8 * Gaussian()), 3);
            }

            await logs.StartRowAsync();
            await logs.WriteAsync(client, NpgsqlDbType.Uuid);
            await logs.WriteAsync(key, NpgsqlDbType.Uuid);
            await logs.WriteAsync(at, NpgsqlDbType.TimestampTz);
            await logs.WriteAsync(new IPAddress([198, 51, 100, (byte)(log % 250 + 1)]), NpgsqlDbType.Inet);
            await logs.WriteAsync(method, NpgsqlDbType.Varchar);
            await logs.WriteAsync(endpoint, NpgsqlDbType.Varchar);
            await WriteNullableAsync(logs, status, NpgsqlDbType.Smallint);
            await WriteNullableAsync(logs, duration, NpgsqlDbType.Double);

            var utc = at.UtcDateTime;
            var hour = new DateTime(utc.Year, utc.Month, utc.Day, utc.Hour, 0, 0, DateTimeKind.Utc);
            var cellKey = (hour, RollupDimensions.Endpoint(endpoint), RollupDimensions.Method(method), RollupDimensions.StatusClass(status), key);
            if (!_cells.TryGetValue(cellKey, out var cell))
            {
                cell = (0, new LatencySketch());
            }

            if (duration is { } milliseconds)
            {
                cell.Latency.Add(milliseconds);
            }

            _cells[cellKey] = (cell.Count + 1, cell.Latency);
            _hours[hour] = _hours.GetValueOrDefault(hour) + 1;
        }

        foreach (var ((hour, endpoint, method, statusClass, key), (cellCount, latency)) in _cells)
        {
            await details.StartRowAsync();
            await details.WriteAsync(client, NpgsqlDbType.Uuid);
            await details.WriteAsync(hour, NpgsqlDbType.TimestampTz);
            await details.WriteAsync(endpoint, NpgsqlDbType.Varchar);
            await details.WriteAsync(method, NpgsqlDbType.Varchar);
            await details.WriteAsync(statusClass, NpgsqlDbType.Smallint);
            await details.WriteAsync(key, NpgsqlDbType.Uuid);
            await details.WriteAsync(cellCount, NpgsqlDbType.Bigint);
            await details.WriteAsync(latency.Pack(), NpgsqlDbType.Array | NpgsqlDbType.Bigint);
        }

        foreach (var (hour, endpoint) in _cells.Keys.Select(cell => (cell.Hour, cell.Endpoint)).Distinct())
        {
            await names.StartRowAsync();
            await names.WriteAsync(client, NpgsqlDbType.Uuid);
            await names.WriteAsync(hour, NpgsqlDbType.TimestampTz);
            await names.WriteAsync(endpoint, NpgsqlDbType.Varchar);
        }

        foreach (var (hour, hourCount) in _hours)
        {
            await hourly.StartRowAsync();
            await hourly.WriteAsync(client, NpgsqlDbType.Uuid);
            await hourly.WriteAsync(hour, NpgsqlDbType.TimestampTz);
            await hourly.WriteAsync(hourCount, NpgsqlDbType.Bigint);
        }

        return count;
    }

    private T Pick<T>(T[] choices, Func<T, int> weight)
    {
        var roll = random.Next(choices.Sum(weight));
        foreach (var choice in choices)
        {
            roll -= weight(choice);
            if (roll < 0)
            {
                return choice;
            }
        }

        throw new InvalidOperationException("The weights do not add up.");
    }

    private double Gaussian() => Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());

    private static async Task WriteNullableAsync<T>(NpgsqlBinaryImporter importer, T? value, NpgsqlDbType type)
        where T : struct
    {
        if (value is { } present)
        {
            await importer.WriteAsync(present, type);
        }
        else
        {
            await importer.WriteNullAsync();
        }
    }
}
