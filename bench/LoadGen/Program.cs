using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;

// A closed-loop HTTP load generator for bench/run.sh. Each connection sends one request at a time until the
// run ends, then every request still in flight is awaited, so the count of 201s is exact and can be checked
// against the rows in PostgreSQL (a tool that abandons in-flight requests at its deadline cannot do that).
// Usage: LoadGen --url U --connections N --seconds S --warmup W [--api-key K | --api-key-file FILE]
//                [--body FILE --logs LOGS_PER_REQUEST] [--scenario NAME] [--method GET] [--bearer-file FILE]
//                [--ports P1,P2,...]
// --ports spreads the connections over API processes on those ports of the URL's host, in turn.
// The body comes from bench/body.py; where it holds id placeholders, each request gets fresh ids written over
// them in place (the exactly-once path). A key or token file holds one per line; requests use them in turn.
var options = ParseArguments(args);
var url = new Uri(options["url"]);
var connections = int.Parse(options.GetValueOrDefault("connections", "32"), CultureInfo.InvariantCulture);
var seconds = double.Parse(options.GetValueOrDefault("seconds", "10"), CultureInfo.InvariantCulture);
var warmup = double.Parse(options.GetValueOrDefault("warmup", "2"), CultureInfo.InvariantCulture);
var apiKeys = options.TryGetValue("api-key-file", out var apiKeyFile)
    ? ReadLines(apiKeyFile)
    : [options.GetValueOrDefault("api-key")];
var scenario = options.GetValueOrDefault("scenario", "load");
// bench/body.py's placeholder: the first 16 characters of every log's id.
var idPlaceholder = "@@@@@@@@@@@@@@@@"u8.ToArray();

var method = options.GetValueOrDefault("method", "POST");
var bearerTokens = options.TryGetValue("bearer-file", out var bearerFile) ? ReadLines(bearerFile) : [null];
var body = options.TryGetValue("body", out var bodyFile) ? File.ReadAllBytes(bodyFile) : [];
var logsPerRequest = int.Parse(options.GetValueOrDefault("logs", "0"), CultureInfo.InvariantCulture);
var withIds = body.AsSpan().IndexOf(idPlaceholder) >= 0;
var ports = options.TryGetValue("ports", out var portList)
    ? portList.Split(',').Select(port => int.Parse(port, CultureInfo.InvariantCulture)).ToArray()
    : [url.Port];

// Requests are serialised once (one per API key and bearer token: connections take them in turn); each
// connection writes the same bytes. HttpClient is not used: its cost per request would take a large share of the
// two cores the server under test shares with this tool.
var requests = apiKeys.SelectMany(apiKey => bearerTokens, (apiKey, token) => Encoding.ASCII.GetBytes(
    $"{method} {url.PathAndQuery} HTTP/1.1\r\nHost: {url.Authority}\r\n"
    + (body.Length > 0 ? $"Content-Type: application/json\r\nContent-Length: {body.Length}\r\n" : string.Empty)
    + (apiKey is null ? string.Empty : $"X-API-Key: {apiKey}\r\n")
    + (token is null ? string.Empty : $"Authorization: Bearer {token}\r\n")
    + "\r\n").Concat(body).ToArray()).ToArray();

var measuring = false;
var stop = false;
var workers = Enumerable.Range(0, connections).Select(index => Task.Run(() => RunConnectionAsync(index))).ToArray();
await Task.Delay(TimeSpan.FromSeconds(warmup));
var measuredFrom = Stopwatch.GetTimestamp();
Volatile.Write(ref measuring, true);
await Task.Delay(TimeSpan.FromSeconds(seconds));
Volatile.Write(ref measuring, false);
var measuredFor = Stopwatch.GetElapsedTime(measuredFrom);
Volatile.Write(ref stop, true);
var results = await Task.WhenAll(workers);

var latencies = results.SelectMany(result => result.Latencies).Order().ToArray();
var measuredRequests = latencies.Length;
var report = new
{
    scenario,
    connections,
    requestsPerSecond = measuredRequests / measuredFor.TotalSeconds,
    logsPerSecond = results.Sum(result => result.MeasuredOk) * logsPerRequest / measuredFor.TotalSeconds,
    p50Ms = Percentile(latencies, 0.50),
    p99Ms = Percentile(latencies, 0.99),
    maxMs = latencies.Length == 0 ? 0 : latencies[^1],
    errors = results.Sum(result => result.Errors),
    // In the measured window, by status code ("closed": the server closed the connection instead of answering).
    statuses = results.SelectMany(result => result.Statuses)
        .GroupBy(status => status.Key, status => status.Value)
        .ToDictionary(group => group.Key, group => group.Sum()),
    // Over the whole run, warm-up included: what the database must hold.
    acknowledgedRequests = results.Sum(result => result.Ok),
    acknowledgedLogs = results.Sum(result => result.Ok) * (long)logsPerRequest,
};
Console.WriteLine(JsonSerializer.Serialize(report));
return 0;

async Task<ConnectionResult> RunConnectionAsync(int index)
{
    var result = new ConnectionResult();
    var next = index * 7919 % requests.Length;
    // With ids, each connection sends its own copy of the bytes with a fresh id prefix per request: this run, this
    // connection, this request. The positions are found once; writing 16 bytes per log costs next to nothing.
    var own = withIds ? requests.Select(request => request.ToArray()).ToArray() : requests;
    var idPositions = withIds ? own.Select(IdPlaceholders).ToArray() : [];
    var runPrefix = Random.Shared.Next(0x1000);
    long sequence = 0;
    using var connection = new HttpConnection(url.Host, ports[index % ports.Length]);
    while (!Volatile.Read(ref stop))
    {
        var started = Stopwatch.GetTimestamp();
        var inWindow = Volatile.Read(ref measuring);
        if (withIds)
        {
            var prefix = Encoding.ASCII.GetBytes($"{runPrefix:x3}{index:x3}{sequence++:x10}");
            foreach (var position in idPositions[next])
            {
                prefix.CopyTo(own[next], position);
            }
        }

        try
        {
            var status = await connection.SendAsync(own[next]);
            next = (next + 1) % requests.Length;
            var ok = status is >= 200 and < 300;
            result.Ok += ok ? 1 : 0;
            if (inWindow)
            {
                result.Latencies.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                result.MeasuredOk += ok ? 1 : 0;
                result.Count(status.ToString(CultureInfo.InvariantCulture), ok);
            }
        }
        catch (IOException)
        {
            // The server closed the connection: that request was not acknowledged. Reconnect and go on.
            if (inWindow)
            {
                result.Count("closed", ok: false);
            }

            connection.Reset();
        }
    }

    return result;
}

int[] IdPlaceholders(byte[] request)
{
    var positions = new List<int>();
    for (var at = request.AsSpan().IndexOf(idPlaceholder); at >= 0;)
    {
        positions.Add(at);
        var next = request.AsSpan(at + idPlaceholder.Length).IndexOf(idPlaceholder);
        at = next < 0 ? -1 : at + idPlaceholder.Length + next;
    }

    return [.. positions];
}

static string?[] ReadLines(string path) => [.. File.ReadAllLines(path).Where(line => line.Length > 0)];

static double Percentile(double[] sorted, double quantile) =>
    sorted.Length == 0 ? 0 : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(quantile * sorted.Length) - 1)];

static Dictionary<string, string> ParseArguments(string[] arguments)
{
    var parsed = new Dictionary<string, string>();
    for (var index = 0; index + 1 < arguments.Length; index += 2)
    {
        parsed[arguments[index].TrimStart('-')] = arguments[index + 1];
    }

    return parsed;
}

/// <summary>One keep-alive HTTP/1.1 connection: writes a request, reads the status line, headers and body.</summary>
sealed class HttpConnection(string host, int port) : IDisposable
{
    private readonly byte[] _buffer = new byte[64 * 1024];
    private System.Net.Sockets.Socket? _socket;

    public async Task<int> SendAsync(byte[] request)
    {
        if (_socket is null)
        {
            _socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp) { NoDelay = true };
            await _socket.ConnectAsync(host, port);
        }

        await _socket.SendAsync(request);
        var filled = 0;
        var headerEnd = -1;
        while (headerEnd < 0)
        {
            filled += await ReceiveAsync(filled);
            headerEnd = _buffer.AsSpan(0, filled).IndexOf("\r\n\r\n"u8);
        }

        var head = Encoding.ASCII.GetString(_buffer, 0, headerEnd);
        var status = int.Parse(head.AsSpan(9, 3), CultureInfo.InvariantCulture);
        var contentLength = 0;
        var chunked = false;
        foreach (var line in head.Split("\r\n"))
        {
            if (line.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase))
            {
                contentLength = int.Parse(line.AsSpan(15).Trim(), CultureInfo.InvariantCulture);
            }
            else if (line.StartsWith("Transfer-Encoding:", StringComparison.OrdinalIgnoreCase) && line.Contains("chunked", StringComparison.OrdinalIgnoreCase))
            {
                chunked = true;
            }
        }

        var bodyStart = headerEnd + 4;
        if (chunked)
        {
            // Problem responses are chunked; read until the terminating zero-length chunk.
            while (_buffer.AsSpan(bodyStart, filled - bodyStart).IndexOf("0\r\n\r\n"u8) < 0)
            {
                filled += await ReceiveAsync(filled);
            }
        }
        else
        {
            while (filled - bodyStart < contentLength)
            {
                filled += await ReceiveAsync(filled);
            }
        }

        return status;
    }

    public void Reset()
    {
        _socket?.Dispose();
        _socket = null;
    }

    public void Dispose() => Reset();

    private async Task<int> ReceiveAsync(int offset)
    {
        var read = await _socket!.ReceiveAsync(_buffer.AsMemory(offset));
        return read == 0 ? throw new IOException("The server closed the connection.") : read;
    }
}

sealed class ConnectionResult
{
    public List<double> Latencies { get; } = new(200_000);
    public long Ok { get; set; }
    public long MeasuredOk { get; set; }
    public long Errors { get; private set; }
    public Dictionary<string, long> Statuses { get; } = [];

    public void Count(string status, bool ok)
    {
        Statuses[status] = Statuses.GetValueOrDefault(status) + 1;
        Errors += ok ? 0 : 1;
    }
}
