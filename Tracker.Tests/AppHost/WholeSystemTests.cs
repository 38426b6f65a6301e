using System.Diagnostics;
using System.Globalization;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using Tracker.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Tracker.Tests.AppHost;

/// <summary>The whole system through Aspire.Hosting.Testing, on this machine's own PostgreSQL and Redis.</summary>
[Collection(nameof(WholeSystem))]
public sealed class WholeSystemTests(ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(120);

    private readonly string _dataDirectory = TestDirectories.NewPath("apphost");

    [Fact]
    public Task AppHost_runs_migrations_then_serves_a_healthy_api_and_web_front_end_on_local_servers() =>
        AssertSystemComesUpAsync(
            ["Tracker:Infrastructure=LocalProcesses", $"Tracker:DataDirectory={_dataDirectory}"],
            output,
            async (notifications, cancellationToken) =>
            {
                // The database, a name on the server, shows its server's state, start time included.
                var server = await notifications.WaitForResourceAsync(
                    "postgres", update => update.Snapshot.State?.Text == KnownResourceStates.Running, cancellationToken);
                var database = await notifications.WaitForResourceAsync(
                    "trackerdb", update => update.Snapshot.State?.Text == KnownResourceStates.Running, cancellationToken);
                Assert.Equal(server.Snapshot.StartTimeStamp, database.Snapshot.StartTimeStamp);

                // The AppHost starts the API with two malloc arenas (MALLOC_ARENA_MAX): the main one and at most one
                // more, where glibc's default on these two cores is 16, the main one and one for each of the next 15
                // threads that allocate (the running API has about 28 threads: 15 heaps without the setting).
                var api = await notifications.WaitForResourceAsync(
                    "api", update => update.Snapshot.Properties.Any(property => property.Name == "executable.pid"), cancellationToken);
                // The orchestrator starts a project through `dotnet run`: the API is the process among its descendants
                // that runs the API's own executable.
                var launched = Convert.ToInt32(api.Snapshot.Properties.Single(property => property.Name == "executable.pid").Value, CultureInfo.InvariantCulture);
                var pid = ProcessAndDescendants(launched).Single(candidate =>
                    Path.GetFileName(new FileInfo($"/proc/{candidate}/exe").LinkTarget ?? "") == "Tracker.ApiService"
                    || File.ReadAllText($"/proc/{candidate}/cmdline").Contains("Tracker.ApiService.dll", StringComparison.Ordinal));
                var arenas = MallocArenaHeaps(pid);
                output.WriteLine($"API process {pid}: {arenas} malloc arena heaps, {Directory.GetDirectories($"/proc/{pid}/task").Length} threads");
                Assert.InRange(arenas, 0, 1);
            });

    private static IEnumerable<int> ProcessAndDescendants(int pid)
    {
        yield return pid;
        var children = File.ReadAllText($"/proc/{pid}/task/{pid}/children").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        foreach (var child in children.Select(child => int.Parse(child, CultureInfo.InvariantCulture)))
        {
            foreach (var descendant in ProcessAndDescendants(child))
            {
                yield return descendant;
            }
        }
    }

    /// <summary>
    /// How many heaps of glibc's non-main malloc arenas process <paramref name="pid"/> has: anonymous mappings of
    /// 64 MiB aligned to 64 MiB, read-write at their start and inaccessible after it (one per arena until an arena
    /// outgrows 64 MiB). A heuristic, good for a bound: a GC region could match by coincidence, and a full heap merged
    /// with a neighbour would be missed.
    /// </summary>
    private static int MallocArenaHeaps(int pid)
    {
        const long HeapSize = 64L * 1024 * 1024;
        var mappings = File.ReadLines($"/proc/{pid}/maps").Select(line =>
        {
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var range = fields[0].Split('-');
            return (Start: long.Parse(range[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture),
                End: long.Parse(range[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture),
                Permissions: fields[1], Anonymous: fields.Length < 6);
        }).ToList();
        var heaps = 0;
        for (var index = 0; index < mappings.Count; index++)
        {
            var mapping = mappings[index];
            if (!mapping.Anonymous || mapping.Permissions != "rw-p" || mapping.Start % HeapSize != 0)
            {
                continue;
            }

            var end = index + 1 < mappings.Count && mappings[index + 1] is { Anonymous: true, Permissions: "---p" } rest && rest.Start == mapping.End
                ? mappings[index + 1].End
                : mapping.End;
            heaps += end - mapping.Start == HeapSize ? 1 : 0;
        }

        return heaps;
    }

    /// <summary>
    /// Starts the AppHost with <paramref name="arguments"/> and checks the worker, the API, the schema, the web front
    /// end and the dashboard's links to them, then <paramref name="alsoCheck"/>.
    /// </summary>
    internal static async Task AssertSystemComesUpAsync(
        string[] arguments, ITestOutputHelper output, Func<ResourceNotificationService, CancellationToken, Task>? alsoCheck = null)
    {
        using var timeout = new CancellationTokenSource(StartTimeout);
        var stopwatch = Stopwatch.StartNew();
        await using var app = await WholeSystemApp.StartAsync(arguments, timeout.Token);
        var notifications = app.Services.GetRequiredService<ResourceNotificationService>();

        var migrations = await notifications.WaitForResourceAsync(
            "migrations", resource => KnownResourceStates.TerminalStates.Contains(resource.Snapshot.State?.Text), timeout.Token);
        Assert.Equal(KnownResourceStates.Finished, migrations.Snapshot.State?.Text);
        Assert.Equal(0, migrations.Snapshot.ExitCode);

        await notifications.WaitForResourceHealthyAsync("api", timeout.Token);
        output.WriteLine($"AppHost start to healthy API: {stopwatch.Elapsed.TotalSeconds:F1} s");

        using var http = app.CreateHttpClient("api");
        using var health = await http.GetAsync(new Uri("/health", UriKind.Relative), timeout.Token);
        Assert.Equal(System.Net.HttpStatusCode.OK, health.StatusCode);
        Assert.Equal("Healthy", await health.Content.ReadAsStringAsync(timeout.Token));

        var connectionString = await app.GetConnectionStringAsync("trackerdb", timeout.Token);
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(timeout.Token);
        await using var command = new NpgsqlCommand(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name", connection);
        var tables = new List<string>();
        await using (var reader = await command.ExecuteReaderAsync(timeout.Token))
        {
            while (await reader.ReadAsync(timeout.Token))
            {
                tables.Add(reader.GetString(0));
            }
        }

        Assert.Contains("clients", tables);
        Assert.Contains("api_keys", tables);
        Assert.Contains("logs", tables);
        Assert.Contains("usage_hourly", tables);
        Assert.Contains("__EFMigrationsHistory", tables);

        // The web front end starts after the API and is healthy once it answers (its readiness includes Redis).
        await notifications.WaitForResourceHealthyAsync("web", timeout.Token);
        using var web = app.CreateHttpClient("web");
        using var signIn = await web.GetAsync(new Uri("/account/login", UriKind.Relative), timeout.Token);
        Assert.Equal(System.Net.HttpStatusCode.OK, signIn.StatusCode);

        // The dashboard's links say what they lead to, and lead there.
        using var browser = new HttpClient();
        var reference = await LinkAsync(notifications, "api", "API reference", timeout.Token);
        Assert.EndsWith("/api", reference, StringComparison.Ordinal);
        using (var docs = await browser.GetAsync(new Uri(reference), timeout.Token))
        {
            Assert.Equal(System.Net.HttpStatusCode.OK, docs.StatusCode);
            Assert.Equal("text/html", docs.Content.Headers.ContentType?.MediaType);
        }

        var openApi = await LinkAsync(notifications, "api", "OpenAPI document", timeout.Token);
        using (var document = await browser.GetAsync(new Uri(openApi), timeout.Token))
        {
            Assert.Equal("application/json", document.Content.Headers.ContentType?.MediaType);
        }

        var usage = await LinkAsync(notifications, "web", "Usage", timeout.Token);
        using (var usagePage = await browser.GetAsync(new Uri(usage), timeout.Token))
        {
            // Signed out, the usage page asks to sign in first.
            Assert.Equal(System.Net.HttpStatusCode.OK, usagePage.StatusCode);
            Assert.Contains("/account/login", usagePage.RequestMessage!.RequestUri!.AbsolutePath, StringComparison.Ordinal);
        }

        if (alsoCheck is not null)
        {
            await alsoCheck(notifications, timeout.Token);
        }
    }

    /// <summary>The address of the dashboard link of <paramref name="resource"/> named <paramref name="displayName"/>.</summary>
    private static async Task<string> LinkAsync(
        ResourceNotificationService notifications, string resource, string displayName, CancellationToken cancellationToken)
    {
        var update = await notifications.WaitForResourceAsync(
            resource, update => update.Snapshot.Urls.Any(url => url.DisplayProperties.DisplayName == displayName), cancellationToken);
        return update.Snapshot.Urls.Single(url => url.DisplayProperties.DisplayName == displayName).Url;
    }

    public void Dispose()
    {
        if (Directory.Exists(_dataDirectory))
        {
            Directory.Delete(_dataDirectory, recursive: true);
        }
    }
}
