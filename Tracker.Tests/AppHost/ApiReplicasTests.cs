using System.Diagnostics;
using System.Net;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
using Microsoft.Extensions.DependencyInjection;
using Tracker.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Tracker.Tests.AppHost;

/// <summary>
/// <c>Tracker:ApiReplicas=2</c>: two API processes behind Aspire's proxy, each a resource of its own, sharing one
/// PostgreSQL and Redis. Each replica is called at its own address (its <c>ASPNETCORE_URLS</c>), so the test knows
/// which one answered.
/// </summary>
[Collection(nameof(WholeSystem))]
public sealed class ApiReplicasTests(ITestOutputHelper output) : IDisposable
{
    private const int UsageLimit = 6;
    private static readonly TimeSpan TestTimeout = TimeSpan.FromMinutes(3);

    private readonly string _dataDirectory = TestDirectories.NewPath("apphost");

    [Fact]
    public async Task Two_api_replicas_share_a_limit_exactly_and_both_refuse_a_revoked_key_within_a_second()
    {
        using var timeout = new CancellationTokenSource(TestTimeout);
        await using var app = await WholeSystemApp.StartAsync(
            ["Tracker:Infrastructure=LocalProcesses", $"Tracker:DataDirectory={_dataDirectory}", "Tracker:ApiReplicas=2"],
            timeout.Token,
            builder => builder.CreateResourceBuilder(builder.Resources.OfType<ProjectResource>().Single(resource => resource.Name == "api"))
                .WithEnvironment("RateLimiting__Usage__PermitLimit", UsageLimit.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        var replicas = await ReplicaAddressesAsync(app, timeout.Token);
        Assert.Equal(2, replicas.Count);
        output.WriteLine($"replicas: {string.Join(", ", replicas)}");
        using var first = new HttpClient { BaseAddress = replicas[0] };
        using var second = new HttpClient { BaseAddress = replicas[1] };

        // A fixed-window limit: requests alternate between the replicas, and exactly the limit gets through.
        var client = await first.RegisterNewAsync();
        var token = await second.LoginTokenAsync(client);
        var statuses = new List<HttpStatusCode>();
        for (var request = 0; request < 2 * UsageLimit; request++)
        {
            using var response = await (request % 2 == 0 ? first : second).SendWithTokenAsync(HttpMethod.Get, "/api/v1/keys", token);
            statuses.Add(response.StatusCode);
        }

        Assert.Equal([.. Enumerable.Repeat(HttpStatusCode.OK, UsageLimit), .. Enumerable.Repeat(HttpStatusCode.TooManyRequests, UsageLimit)], statuses);

        // Another client's key, cached by both replicas; one revokes it (through the proxy, whichever replica that
        // is), and both refuse it within a second.
        var holder = await second.RegisterNewAsync();
        foreach (var replica in (HttpClient[])[first, second])
        {
            using var accepted = await replica.GetWithApiKeyAsync("/api/v1/keys/current", holder.ApiKey);
            Assert.Equal(HttpStatusCode.OK, accepted.StatusCode);
        }

        var holderToken = await first.LoginTokenAsync(holder);
        var keyId = await CurrentKeyIdAsync(first, holder.ApiKey);
        using var proxied = app.CreateHttpClient("api");
        // The clock starts when the revocation is answered: from then on it is committed, and what is timed is how
        // long a replica that did not serve it goes on accepting the key (the first request through the proxy may
        // take longer than a second on a busy machine by itself, which says nothing about the revocation).
        var revoking = Stopwatch.StartNew();
        using (var revoke = await proxied.SendWithTokenAsync(HttpMethod.Delete, $"/api/v1/keys/{keyId}", holderToken))
        {
            Assert.True(revoke.IsSuccessStatusCode, $"revoking answered {(int)revoke.StatusCode}");
        }

        output.WriteLine($"the revocation was answered in {revoking.ElapsedMilliseconds} ms");
        var revokedAt = Stopwatch.StartNew();

        foreach (var replica in (HttpClient[])[first, second])
        {
            await Poll.UntilAsync(async () =>
            {
                using var refused = await replica.GetWithApiKeyAsync("/api/v1/keys/current", holder.ApiKey);
                return refused.StatusCode == HttpStatusCode.Unauthorized;
            }, TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(20));
        }

        output.WriteLine($"both replicas refused the revoked key {revokedAt.ElapsedMilliseconds} ms after the revocation");
        Assert.True(revokedAt.Elapsed < TimeSpan.FromSeconds(1), $"the revoked key was accepted for {revokedAt.ElapsedMilliseconds} ms");
    }

    /// <summary>Each running API replica's own address, from the environment Aspire gave it, once it answers there.</summary>
    private static async Task<List<Uri>> ReplicaAddressesAsync(DistributedApplication app, CancellationToken cancellationToken)
    {
        var notifications = app.Services.GetRequiredService<ResourceNotificationService>();
        await notifications.WaitForResourceHealthyAsync("api", cancellationToken);
        var addresses = new Dictionary<string, Uri>();
        await foreach (var update in notifications.WatchAsync(cancellationToken))
        {
            if (update.Resource.Name == "api" && update.Snapshot.State?.Text == KnownResourceStates.Running
                && update.Snapshot.HealthStatus == Microsoft.Extensions.Diagnostics.HealthChecks.HealthStatus.Healthy
                && update.Snapshot.EnvironmentVariables.FirstOrDefault(variable => variable.Name == "ASPNETCORE_URLS") is { Value: { Length: > 0 } urls })
            {
                addresses[update.ResourceId] = new Uri(urls.Split(';')[0]);
                if (addresses.Count == 2)
                {
                    break;
                }
            }
        }

        // Aspire's health check calls the resource through its proxy, which may reach the other replica: a replica
        // reported healthy may not be listening yet (CI run 26 was refused a connection). Each one is asked itself.
        using var http = new HttpClient();
        foreach (var address in addresses.Values)
        {
            await Poll.UntilAsync(async () =>
            {
                using var health = await http.GetAsync(new Uri(address, "/health"), cancellationToken);
                return health.StatusCode == HttpStatusCode.OK;
            }, TimeSpan.FromSeconds(60), TimeSpan.FromMilliseconds(100));
        }

        return [.. addresses.Values];
    }

    private static async Task<string> CurrentKeyIdAsync(HttpClient http, string apiKey)
    {
        using var response = await http.GetWithApiKeyAsync("/api/v1/keys/current", apiKey);
        var data = await ApiClient.DataAsync(response, HttpStatusCode.OK);
        return data.GetProperty("id").GetString()!;
    }

    public void Dispose()
    {
        if (Directory.Exists(_dataDirectory))
        {
            Directory.Delete(_dataDirectory, recursive: true);
        }
    }
}
