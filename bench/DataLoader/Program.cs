using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Npgsql;
using NpgsqlTypes;

// Loads history for the analytics benchmark: N clients and M logs spread uniformly over the last D days, written
// with binary COPY (two streams in parallel), then the hourly rollups ingest would have written for those logs,
// then VACUUM ANALYZE so the planner and index-only scans see the real volume and autovacuum has nothing left to
// do. Writes one JWT per client (signed with the API's key, as the API would issue it) to a file, for the load
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

await using var dataSource = NpgsqlDataSource.Create(connectionString);
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
    var window = TimeSpan.FromDays(days).Ticks;
    await Task.WhenAll(Enumerable.Range(0, Streams).Select(stream => Task.Run(async () =>
    {
        var random = new Random(stream + 1);
        var keys = clients.Select(_ => Guid.NewGuid()).ToArray();
        await using var connection = await dataSource.OpenConnectionAsync();
        await using var import = await connection.BeginBinaryImportAsync(
            "COPY logs (client_id, api_key_id, occurred_at, ip_address, method, endpoint) FROM STDIN (FORMAT BINARY)");
        for (var row = stream; row < logCount; row += Streams)
        {
            var client = random.Next(clients.Length);
            await import.StartRowAsync();
            await import.WriteAsync(clients[client], NpgsqlDbType.Uuid);
            await import.WriteAsync(keys[client], NpgsqlDbType.Uuid);
            await import.WriteAsync(now.AddTicks(-random.NextInt64(window)), NpgsqlDbType.TimestampTz);
            await import.WriteAsync(new IPAddress([198, 51, 100, (byte)(row % 250 + 1)]), NpgsqlDbType.Inet);
            await import.WriteAsync("GET", NpgsqlDbType.Varchar);
            await import.WriteAsync("/v1/orders", NpgsqlDbType.Varchar);
        }

        await import.CompleteAsync();
    })));
    Console.Error.WriteLine($"{logCount:N0} logs in {stopwatch.Elapsed.TotalSeconds:F1} s");

    await using (var connection = await dataSource.OpenConnectionAsync())
    {
        await using (var rollup = new NpgsqlCommand("""
            INSERT INTO usage_hourly (client_id, hour_start, request_count)
            SELECT client_id, date_trunc('hour', occurred_at, 'UTC'), count(*)
            FROM logs WHERE client_id = ANY($1)
            GROUP BY 1, 2
            ON CONFLICT (client_id, hour_start) DO UPDATE SET request_count = usage_hourly.request_count + excluded.request_count
            """, connection))
        {
            rollup.CommandTimeout = 0;
            rollup.Parameters.Add(new NpgsqlParameter<Guid[]> { TypedValue = clients });
            await rollup.ExecuteNonQueryAsync();
        }

        // One statement per command: VACUUM refuses to run in the implicit transaction of a multi-statement command.
        // The logs are vacuumed too, or autovacuum would do it during the measurements that follow.
        foreach (var maintenance in new[] { "VACUUM ANALYZE usage_hourly", "VACUUM ANALYZE clients", "VACUUM ANALYZE logs" })
        {
            await using var command = new NpgsqlCommand(maintenance, connection) { CommandTimeout = 0 };
            await command.ExecuteNonQueryAsync();
        }
    }

    Console.Error.WriteLine($"rollups and statistics in {stopwatch.Elapsed.TotalSeconds:F1} s");
}

static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
