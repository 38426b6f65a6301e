using System.Net.Http.Json;
using Npgsql;

namespace Tracker.Tests.Infrastructure;

/// <summary>Sends activity logs as an API client would, and counts what reached PostgreSQL.</summary>
public static class IngestClient
{
    public static object Log(string ip = "203.0.113.7", string endpoint = "/v1/orders", string method = "get", DateTimeOffset? at = null) =>
        new { ipAddress = ip, endpoint, method, timestamp = (at ?? DateTimeOffset.UtcNow.AddSeconds(-1)).ToUnixTimeMilliseconds() };

    public static async Task<HttpResponseMessage> PostLogAsync(this HttpClient http, string apiKey, object log)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/logs") { Content = JsonContent.Create(log) };
        request.Headers.TryAddWithoutValidation("X-API-Key", apiKey);
        return await http.SendAsync(request);
    }

    public static async Task<HttpResponseMessage> PostBatchAsync(this HttpClient http, string apiKey, IEnumerable<object> logs)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/logs/batch") { Content = JsonContent.Create(new { logs }) };
        request.Headers.TryAddWithoutValidation("X-API-Key", apiKey);
        return await http.SendAsync(request);
    }

    public static async Task<long> ScalarAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    public static async Task<string> TextAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return (string)(await command.ExecuteScalarAsync())!;
    }

    public static async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    public static Task<long> CountLogsAsync(string connectionString) => ScalarAsync(connectionString, "SELECT count(*) FROM logs");
}
