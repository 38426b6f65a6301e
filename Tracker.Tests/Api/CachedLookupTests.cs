using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Tracker.ApiService.ApiKeys;
using Tracker.ApiService.Auth;
using Tracker.Tests.Infrastructure;

namespace Tracker.Tests.Api;

/// <summary>
/// Authentication costs no database round trip once a key or client is known: lookups come from memory, then
/// from Redis. Counted with Npgsql's own trace activities, filtered to this test's database.
/// </summary>
[Collection(nameof(RealServers))]
public sealed class CachedLookupTests(ServersFixture servers) : IAsyncLifetime, IDisposable
{
    private readonly ConcurrentBag<Activity> _queries = [];
    private TrackerApiFactory _factory = null!;
    private HttpClient _http = null!;
    private ActivityListener? _listener;
    private string _database = null!;

    public async Task InitializeAsync()
    {
        _factory = await TrackerApiFactory.CreateAsync(servers);
        _http = _factory.CreateClient();
        _database = new Npgsql.NpgsqlConnectionStringBuilder(_factory.DatabaseConnectionString).Database!;
        _listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == "Npgsql",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activity =>
            {
                if (activity.Tags.Any(tag => tag.Value == _database))
                {
                    _queries.Add(activity);
                }
            },
        };
        ActivitySource.AddActivityListener(_listener);
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _factory.DisposeAsync();
    }

    public void Dispose() => _listener?.Dispose();

    [Fact]
    public async Task An_api_key_is_read_from_the_database_once_then_from_the_caches()
    {
        var client = await _http.RegisterNewAsync();
        var store = _factory.Services.GetRequiredService<ApiKeyStore>();
        var hash = ApiKeyFormat.Hash(client.ApiKey);
        _queries.Clear();

        Assert.NotNull(await store.FindActiveAsync(hash, CancellationToken.None));
        Assert.Single(_queries);

        for (var lookup = 0; lookup < 100; lookup++)
        {
            Assert.NotNull(await store.FindActiveAsync(hash, CancellationToken.None));
        }

        // Past the memory tier's lifetime the answer comes from Redis (or from the keys the instance remembers), still
        // not from PostgreSQL.
        await Task.Delay(ApiKeyStore.LocalLifetime + TimeSpan.FromMilliseconds(200));
        Assert.NotNull(await store.FindActiveAsync(hash, CancellationToken.None));
        Assert.Single(_queries);
    }

    [Fact]
    public async Task A_token_subject_is_checked_against_the_database_once()
    {
        var client = await _http.RegisterNewAsync();
        var directory = _factory.Services.GetRequiredService<ClientDirectory>();
        _queries.Clear();

        for (var check = 0; check < 50; check++)
        {
            Assert.True(await directory.ExistsAsync(client.Id, CancellationToken.None));
        }

        Assert.Single(_queries);
        Assert.False(await directory.ExistsAsync(Guid.NewGuid(), CancellationToken.None));
    }
}
