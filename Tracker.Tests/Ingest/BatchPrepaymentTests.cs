using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Tracker.ApiService.Ingest;
using Tracker.Tests.Infrastructure;
using static Tracker.Tests.Infrastructure.IngestClient;
using static Tracker.Tests.RateLimiting.RateLimitAssertions;

namespace Tracker.Tests.Ingest;

/// <summary>
/// Batches paid before they are parsed (<see cref="BatchPrepayment"/>), attacked: bodies the count might misread,
/// every way a request can end, a body declared and not sent, the estimate of unparsed logs' room, and what a
/// malformed batch's answer says it spent.
/// </summary>
[Collection(nameof(RealServers))]
public sealed class BatchPrepaymentTests(ServersFixture servers)
{
    private static Dictionary<string, string?> Bucket(int burst, double perSecond) => new()
    {
        ["RateLimiting:Ingest:BurstLimit"] = burst.ToString(CultureInfo.InvariantCulture),
        ["RateLimiting:Ingest:TokensPerSecond"] = perSecond.ToString(CultureInfo.InvariantCulture),
        ["RateLimiting:Ingest:LeaseMilliseconds"] = "0",
        ["Ingest:MaxLogsPerBatchRequest"] = burst.ToString(CultureInfo.InvariantCulture),
    };

    private static object[] Logs(int count) => [.. Enumerable.Range(0, count).Select(index => Log(endpoint: $"/review/{index}"))];

    private static byte[] Json(object[] logs) => JsonSerializer.SerializeToUtf8Bytes(new { logs });

    private static async Task<HttpResponseMessage> PostRawAsync(HttpClient http, string apiKey, byte[] body, string contentType, bool chunked = false, string? idempotencyKey = null)
    {
        var content = new ByteArrayContent(body);
        content.Headers.TryAddWithoutValidation("Content-Type", contentType);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/logs/batch") { Content = content };
        request.Headers.TryAddWithoutValidation("X-API-Key", apiKey);
        if (chunked)
        {
            request.Headers.TransferEncodingChunked = true;
        }

        if (idempotencyKey is not null)
        {
            request.Headers.TryAddWithoutValidation("Idempotency-Key", idempotencyKey);
        }

        return await http.SendAsync(request);
    }

    // HttpClient reports a failed send instead of the answer when the server answers and closes before the body is all
    // sent (dotnet/runtime#57186), as Kestrel does with a 413 to a body over its limit: whether the client sees the
    // 413 is a race it loses whenever the body outgrows the sockets' buffers (CI run 56: "Broken pipe"). This sends
    // over a socket of its own and reads the answer while it writes, so the test sees whatever the server answered.
    private static async Task<HttpResponseMessage> PostOverSocketAsync(Uri address, string apiKey, byte[] body, bool chunked)
    {
        // A server that neither reads nor answers fails the case (status 0) instead of hanging the test.
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var socket = new TcpClient();
        await socket.ConnectAsync(address.Host, address.Port, deadline.Token);
        var stream = socket.GetStream();
        var framing = chunked ? "Transfer-Encoding: chunked" : $"Content-Length: {body.Length}";
        var answer = ReadToEndAsync(stream, deadline.Token);
        try
        {
            await stream.WriteAsync(Encoding.ASCII.GetBytes($"POST /api/v1/logs/batch HTTP/1.1\r\nHost: {address.Host}\r\nX-API-Key: {apiKey}\r\nContent-Type: application/json\r\n{framing}\r\nConnection: close\r\n\r\n"), deadline.Token);
            if (!chunked)
            {
                await stream.WriteAsync(body, deadline.Token);
            }
            else
            {
                foreach (var chunk in body.Chunk(64 * 1024))
                {
                    await stream.WriteAsync(Encoding.ASCII.GetBytes(chunk.Length.ToString("x", CultureInfo.InvariantCulture) + "\r\n"), deadline.Token);
                    await stream.WriteAsync(chunk, deadline.Token);
                    await stream.WriteAsync("\r\n"u8.ToArray(), deadline.Token);
                }

                await stream.WriteAsync("0\r\n\r\n"u8.ToArray(), deadline.Token);
            }
        }
        catch (Exception exception) when (exception is IOException or OperationCanceledException)
        {
            // The server closed the connection before the body was all sent: its answer, if any, is being read.
        }

        var text = await answer;
        var status = text.Split(' ', 3) is [['H', 'T', 'T', 'P', ..], var code, _] ? int.Parse(code, CultureInfo.InvariantCulture) : 0;
        return new HttpResponseMessage((HttpStatusCode)status) { Content = new StringContent(text) };
    }

    private static async Task<string> ReadToEndAsync(NetworkStream stream, CancellationToken cancellationToken)
    {
        using var received = new MemoryStream();
        var buffer = new byte[16 * 1024];
        try
        {
            int read;
            while ((read = await stream.ReadAsync(buffer, cancellationToken)) > 0)
            {
                received.Write(buffer, 0, read);
            }
        }
        catch (Exception exception) when (exception is IOException or OperationCanceledException)
        {
            // A reset after the answer (what arrived before it is the answer), or the deadline.
        }

        return Encoding.UTF8.GetString(received.ToArray());
    }

    private static readonly byte[] Bom = [0xEF, 0xBB, 0xBF];

    // A body with a byte order mark: the binder skips it, and so does the count, so an invalid batch pays its logs.
    [Fact]
    public async Task A_batch_with_a_byte_order_mark_pays_its_logs_before_it_is_validated()
    {
        await using var factory = await TrackerApiFactory.CreateAsync(servers, Bucket(100, 0.01));
        using var http = factory.CreateClient();
        var client = await http.RegisterNewAsync();

        using var invalid = await PostRawAsync(http, client.ApiKey, [.. Bom, .. Json([.. Logs(19), Log(ip: "010.0.0.1")])], "application/json");
        var text = await invalid.Content.ReadAsStringAsync();
        Assert.True(invalid.StatusCode == HttpStatusCode.BadRequest, $"{(int)invalid.StatusCode}: {text}");
        // The binder read all 20 logs (it names the bad one), and the batch paid for 20: r=80, not r=99.
        Assert.Contains("logs[19]", text, StringComparison.Ordinal);
        Assert.StartsWith("\"ingest\";r=80;", Header(invalid, "RateLimit"), StringComparison.Ordinal);
    }

    // The binder would transcode another charset before parsing, which the count cannot see: such a body is refused.
    [Theory]
    [InlineData("application/json; charset=utf-16")]
    [InlineData("application/json; charset=iso-8859-1")]
    [InlineData("application/json; charset=\"utf-8\"")]
    [InlineData("application/json; charset=utf8")]
    public async Task A_batch_in_another_charset_than_utf_8_is_refused_unread_and_costs_no_logs(string contentType)
    {
        await using var factory = await TrackerApiFactory.CreateAsync(servers, Bucket(100, 0.01));
        using var http = factory.CreateClient();
        var client = await http.RegisterNewAsync();
        var text = Encoding.UTF8.GetString(Json(Logs(20)));

        using var refused = await PostRawAsync(http, client.ApiKey, Encoding.Unicode.GetBytes(text), contentType);
        var problem = await ProblemAssertions.AssertProblemAsync(refused, HttpStatusCode.UnsupportedMediaType);
        Assert.Equal("Unsupported charset.", problem.GetProperty("title").GetString());
        Assert.StartsWith("\"ingest\";r=99;", Header(refused, "RateLimit"), StringComparison.Ordinal);

        using var utf8 = await PostRawAsync(http, client.ApiKey, Encoding.UTF8.GetBytes(text), "application/json; charset=UTF-8");
        Assert.Equal(HttpStatusCode.Created, utf8.StatusCode);
        Assert.StartsWith("\"ingest\";r=79;", Header(utf8, "RateLimit"), StringComparison.Ordinal);
    }

    // A batch over the most logs a batch may hold is refused unparsed, having paid for that most.
    [Fact]
    public async Task A_batch_of_more_logs_than_allowed_pays_for_the_most_allowed_and_is_refused_unparsed()
    {
        await using var factory = await TrackerApiFactory.CreateAsync(servers, Bucket(100, 0.01));
        using var http = factory.CreateClient();
        var client = await http.RegisterNewAsync();

        using var tooMany = await PostRawAsync(http, client.ApiKey, Encoding.UTF8.GetBytes("{\"logs\":[" + string.Join(',', Enumerable.Repeat("{}", 150)) + "]}"), "application/json");
        var problem = await ProblemAssertions.AssertProblemAsync(tooMany, HttpStatusCode.BadRequest);
        Assert.Equal("logs must hold 1 to 100 logs.", problem.GetProperty("errors").GetProperty("logs")[0].GetString());
        Assert.StartsWith("\"ingest\";r=0;", Header(tooMany, "RateLimit"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_batch_with_a_byte_order_mark_the_budget_cannot_pay_is_refused_before_it_is_parsed()
    {
        await using var factory = await TrackerApiFactory.CreateAsync(servers, Bucket(100, 0.01));
        using var http = factory.CreateClient();
        var client = await http.RegisterNewAsync();
        using (var paid = await http.PostBatchAsync(client.ApiKey, Logs(60)))
        {
            Assert.Equal(HttpStatusCode.Created, paid.StatusCode);
        }

        // As in IngestLogBudgetTests: fifty invalid logs the budget cannot pay are a 429, unparsed, BOM or not.
        using var unread = await PostRawAsync(http, client.ApiKey, [.. Bom, .. Json([.. Enumerable.Repeat(Log(ip: "010.0.0.1"), 50)])], "application/json");
        var text = await unread.Content.ReadAsStringAsync();
        Assert.True(unread.StatusCode == HttpStatusCode.TooManyRequests, $"{(int)unread.StatusCode}: {text}");
    }

    // Every way a batch request can end gives its queue room back and answers no 500.
    [Fact]
    public async Task No_path_leaks_queue_room_or_answers_500()
    {
        // A bucket far larger than the batches: the 1,001-log batch pays 1,000 logs, and the cases after it must not
        // wait for a refill (CI run 31: a burst of 1,000 left the next batch a 429).
        var settings = Bucket(1_000_000, 1_000_000);
        settings["Ingest:MaxLogsPerBatchRequest"] = "1000";
        await using var factory = await TrackerApiFactory.CreateAsync(servers, settings);
        using var http = factory.CreateClient();
        var client = await http.RegisterNewAsync();
        var writer = factory.Services.GetRequiredService<LogBatchWriter>();

        var valid = Json(Logs(3));
        byte[] overLimit = [.. Json(Logs(3)).SkipLast(1), .. Encoding.UTF8.GetBytes(new string(' ', 4_200_000)), (byte)'}'];
        var cases = new List<(string Name, Func<Task<HttpResponseMessage>> Send, HttpStatusCode Expected)>
        {
            ("malformed", () => PostRawAsync(http, client.ApiKey, Encoding.UTF8.GetBytes("""{"logs":[{},{},{"""), "application/json"), HttpStatusCode.BadRequest),
            ("not json", () => PostRawAsync(http, client.ApiKey, Encoding.UTF8.GetBytes("hello"), "application/json"), HttpStatusCode.BadRequest),
            ("empty", () => PostRawAsync(http, client.ApiKey, [], "application/json"), HttpStatusCode.BadRequest),
            ("empty chunked", () => PostRawAsync(http, client.ApiKey, [], "application/json", chunked: true), HttpStatusCode.BadRequest),
            ("text/plain", () => PostRawAsync(http, client.ApiKey, valid, "text/plain"), HttpStatusCode.UnsupportedMediaType),
            ("logs object", () => PostRawAsync(http, client.ApiKey, Encoding.UTF8.GetBytes("""{"logs":{"a":1}}"""), "application/json"), HttpStatusCode.BadRequest),
            ("duplicate logs", () => PostRawAsync(http, client.ApiKey, Encoding.UTF8.GetBytes("{\"logs\":[" + string.Join(',', Logs(2).Select(l => JsonSerializer.Serialize(l))) + "],\"Logs\":[]}"), "application/json"), HttpStatusCode.BadRequest),
            ("too many", () => PostRawAsync(http, client.ApiKey, Json(Logs(1001)), "application/json"), HttpStatusCode.BadRequest),
            ("invalid log", () => PostRawAsync(http, client.ApiKey, Json([.. Logs(3), Log(ip: "x")]), "application/json"), HttpStatusCode.BadRequest),
            // Four times the 1 MiB limit: more than the sockets' buffers hold, so the server answers before the body is
            // all sent, as it would to a client on a real network.
            ("over limit", () => PostOverSocketAsync(http.BaseAddress!, client.ApiKey, overLimit, chunked: false), HttpStatusCode.RequestEntityTooLarge),
            ("over limit chunked", () => PostOverSocketAsync(http.BaseAddress!, client.ApiKey, overLimit, chunked: true), HttpStatusCode.RequestEntityTooLarge),
            ("chunked valid", () => PostRawAsync(http, client.ApiKey, Json(Logs(4)), "application/json", chunked: true), HttpStatusCode.Created),
            ("bad idempotency key", () => PostRawAsync(http, client.ApiKey, valid, "application/json", idempotencyKey: "a b\u0001"), HttpStatusCode.BadRequest),
            ("idempotent", () => PostRawAsync(http, client.ApiKey, valid, "application/json", idempotencyKey: "k-1"), HttpStatusCode.Created),
            ("idempotent repeat", () => PostRawAsync(http, client.ApiKey, valid, "application/json", idempotencyKey: "k-1"), HttpStatusCode.Created),
            ("idempotent mismatch", () => PostRawAsync(http, client.ApiKey, Json(Logs(5)), "application/json", idempotencyKey: "k-1"), HttpStatusCode.UnprocessableEntity),
        };

        var failures = new List<string>();
        foreach (var (name, send, expected) in cases)
        {
            using var response = await send();
            if (response.StatusCode != expected)
            {
                failures.Add($"{name}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            }

            if (writer.QueuedLogs != 0 || writer.QueuedBytes != 0)
            {
                await Poll.UntilAsync(() => Task.FromResult(writer.QueuedLogs == 0 && writer.QueuedBytes == 0), TimeSpan.FromSeconds(5));
            }
        }

        // Clients leaving mid-body: a FIN, and a reset.
        var address = http.BaseAddress!;
        foreach (var reset in new[] { false, true })
        {
            using var socket = new TcpClient();
            await socket.ConnectAsync(address.Host, address.Port);
            var stream = socket.GetStream();
            var head = $"POST /api/v1/logs/batch HTTP/1.1\r\nHost: {address.Host}\r\nX-API-Key: {client.ApiKey}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n";
            await stream.WriteAsync(Encoding.ASCII.GetBytes(head + "{\"logs\":[{},{},"));
            await stream.FlushAsync();
            await Task.Delay(300);
            if (reset)
            {
                socket.Client.LingerState = new LingerOption(true, 0);
            }

            socket.Close();
        }

        await Task.Delay(1000);
        Assert.Equal(0, writer.QueuedLogs);
        Assert.Equal(0, writer.QueuedBytes);
        var errors = factory.Logs.Lines.Where(line => line.StartsWith("Error", StringComparison.Ordinal) || line.StartsWith("Critical", StringComparison.Ordinal)).ToList();
        Assert.True(failures.Count == 0 && errors.Count == 0, string.Join("\n", failures.Concat(errors)));
    }

    // Memory follows the bytes that arrived, not the Content-Length declared.
    [Fact]
    public async Task A_body_declared_but_not_sent_does_not_make_the_server_hold_its_declared_length()
    {
        await using var factory = await TrackerApiFactory.CreateAsync(servers);
        using var http = factory.CreateClient();
        var clients = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => http.RegisterNewAsync()));
        var address = http.BaseAddress!;
        await Task.Delay(500);

        var sockets = new List<TcpClient>();
        foreach (var client in clients)
        {
            // Four bodies per client fit its 4 MiB in flight: each is admitted, and one at a time is read.
            for (var index = 0; index < 4; index++)
            {
                var socket = new TcpClient();
                await socket.ConnectAsync(address.Host, address.Port);
                var head = $"POST /api/v1/logs/batch HTTP/1.1\r\nHost: {address.Host}\r\nX-API-Key: {client.ApiKey}\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{{\"logs\":[";
                await socket.GetStream().WriteAsync(Encoding.ASCII.GetBytes(head));
                sockets.Add(socket);
            }
        }

        try
        {
            // Each client's first body is being read: 9 bytes arrived of 1,000,000 declared.
            await Poll.UntilAsync(() => Task.FromResult(PrepaidBatch.BufferedBytes >= 4 * 16 * 1024), TimeSpan.FromSeconds(10));
            await Task.Delay(500);
            Assert.InRange(PrepaidBatch.BufferedBytes, 4 * 16 * 1024, 4 * 32 * 1024);
        }
        finally
        {
            foreach (var socket in sockets)
            {
                socket.Dispose();
            }
        }

        // Every buffer goes back when its client leaves.
        await Poll.UntilAsync(() => Task.FromResult(PrepaidBatch.BufferedBytes == 0), TimeSpan.FromSeconds(10));
    }

    // A configuration the options allow (Ingest:QueueCapacityBytes of 1 MiB): a batch of one short log, padded near the
    // body limit, fits an empty queue: its room before it is parsed is estimated from its strings, not its whole body.
    [Fact]
    public async Task A_padded_batch_of_one_log_fits_an_empty_queue_of_the_smallest_allowed_byte_capacity()
    {
        await using var factory = await TrackerApiFactory.CreateAsync(servers, new Dictionary<string, string?>
        {
            ["Ingest:QueueCapacityBytes"] = "1048576",
        });
        using var http = factory.CreateClient();
        var client = await http.RegisterNewAsync();
        var log = Encoding.UTF8.GetString(Json(Logs(1)));
        var body = Encoding.UTF8.GetBytes(log[..^1] + new string(' ', 600_000) + "}");

        using var response = await PostRawAsync(http, client.ApiKey, body, "application/json");
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
    }

    // A truncated batch pays its counted logs and is answered by the exception handler, whose answer still says so.
    [Fact]
    public async Task A_malformed_batch_that_paid_its_logs_says_what_is_left()
    {
        await using var factory = await TrackerApiFactory.CreateAsync(servers, Bucket(100, 0.01));
        using var http = factory.CreateClient();
        var client = await http.RegisterNewAsync();
        var complete = Encoding.UTF8.GetString(Json(Logs(30)));
        var truncated = Encoding.UTF8.GetBytes(complete[..^2] + ",{");

        using var malformed = await PostRawAsync(http, client.ApiKey, truncated, "application/json");
        Assert.Equal(HttpStatusCode.BadRequest, malformed.StatusCode);
        using var next = await http.PostBatchAsync(client.ApiKey, Logs(1));
        // 30 counted logs paid by the malformed one: 100 - 30 - 1 = 69 left after the next.
        Assert.StartsWith("\"ingest\";r=69;", Header(next, "RateLimit"), StringComparison.Ordinal);
        Assert.StartsWith("\"ingest\";r=70;", Header(malformed, "RateLimit"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_chunked_body_that_also_declares_a_content_length_is_read_whole()
    {
        await using var factory = await TrackerApiFactory.CreateAsync(servers);
        using var http = factory.CreateClient();
        var client = await http.RegisterNewAsync();
        var address = http.BaseAddress!;
        var body = Json(Logs(3));
        using var socket = new TcpClient();
        await socket.ConnectAsync(address.Host, address.Port);
        var stream = socket.GetStream();
        var head = $"POST /api/v1/logs/batch HTTP/1.1\r\nHost: {address.Host}\r\nX-API-Key: {client.ApiKey}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nContent-Length: 10\r\nConnection: close\r\n\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head + body.Length.ToString("x", CultureInfo.InvariantCulture) + "\r\n"));
        await stream.WriteAsync(body);
        await stream.WriteAsync(Encoding.ASCII.GetBytes("\r\n0\r\n\r\n"));
        using var reader = new StreamReader(stream);
        var answer = await reader.ReadToEndAsync();
        Assert.StartsWith("HTTP/1.1 201", answer, StringComparison.Ordinal);
    }
}
