using System.Security.Cryptography;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Tracker.ApiService;
using Tracker.ApiService.Caching;

namespace Tracker.Tests.Infrastructure;

/// <summary>
/// The real API on Kestrel (a loopback port of its own) against real PostgreSQL and Redis, with a fresh,
/// migrated database and a freshly generated JWT signing key — no secret is shared with any other run.
/// </summary>
public sealed class TrackerApiFactory : WebApplicationFactory<ApiAssemblyMarker>
{
    private readonly ServersFixture _servers;
    private readonly Dictionary<string, string?> _settings;
    private Action<IServiceCollection>? _configureServices;

    private readonly IDictionary<string, string?>? _overrides;
    private readonly bool _ownsDatabase;

    private TrackerApiFactory(
        ServersFixture servers, string databaseConnectionString, string jwtSigningKey, IDictionary<string, string?>? settings, bool ownsDatabase)
    {
        _servers = servers;
        _overrides = settings;
        _ownsDatabase = ownsDatabase;
        var database = new Npgsql.NpgsqlConnectionStringBuilder(databaseConnectionString).Database;
        DatabaseConnectionString = databaseConnectionString;
        JwtSigningKey = jwtSigningKey;
        _settings = new Dictionary<string, string?>
        {
            ["ConnectionStrings:trackerdb"] = DatabaseConnectionString,
            ["ConnectionStrings:cache"] = servers.Redis.ConnectionString,
            ["Jwt:SigningKey"] = jwtSigningKey,
            ["ApiKeys:UsageFlushIntervalSeconds"] = "1",
            // Limits of their own (siblings share them, as instances of one deployment do), and high enough that
            // only the rate-limiting tests, which set their own, ever meet them.
            ["RateLimiting:KeyPrefix"] = $"test-rate:{database}:",
            // Cache keys of their own too: keys for everyone (the usage ranking and its generation) would otherwise
            // carry one test's answers into another's.
            [CachingExtensions.RedisInstanceNameSetting] = $"test-cache:{database}:",
            ["RateLimiting:Auth:PermitLimit"] = "100000",
            ["RateLimiting:Usage:PermitLimit"] = "100000",
            ["RateLimiting:Ingest:BurstLimit"] = "1000000",
            ["RateLimiting:Ingest:TokensPerSecond"] = "1000000",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            _settings[key] = value;
        }

        // Kestrel, not the in-memory TestServer: body limits, chunked bodies and connection behaviour are real.
        // The port comes from UseUrls below; UseKestrel(0) races with the server start and fails now and then.
        UseKestrel();
    }

    public string DatabaseConnectionString { get; }

    /// <summary>The key this API signs tokens with, so tests can forge tokens that differ in one respect only.</summary>
    public string JwtSigningKey { get; }

    public CapturedLogs Logs { get; } = new();

    public ServersFixture Servers => _servers;

    /// <summary>Creates and migrates a database of its own, then returns a factory ready to start.</summary>
    public static async Task<TrackerApiFactory> CreateAsync(ServersFixture servers, IDictionary<string, string?>? settings = null)
    {
        var connectionString = await TestDatabase.CreateMigratedAsync(servers.Postgres);
        return new TrackerApiFactory(servers, connectionString, Convert.ToBase64String(RandomNumberGenerator.GetBytes(48)), settings, ownsDatabase: true);
    }

    /// <summary>Replaces or adds services before the host starts (call before the first request).</summary>
    public TrackerApiFactory WithServices(Action<IServiceCollection> configure)
    {
        _configureServices += configure;
        return this;
    }

    /// <summary>A second API instance on the same database, Redis and signing key, as behind a load balancer.</summary>
    public TrackerApiFactory CreateSibling() => new(_servers, DatabaseConnectionString, JwtSigningKey, _overrides, ownsDatabase: false);

    /// <summary>The prefix of this instance's (and its siblings') rate-limit keys in Redis.</summary>
    public string RateLimitKeyPrefix => _settings["RateLimiting:KeyPrefix"]!;

    /// <summary>The prefix of this instance's (and its siblings') cache keys in Redis.</summary>
    public string CachePrefix => _settings[CachingExtensions.RedisInstanceNameSetting]!;

    /// <summary>Stops the API, then drops its database (siblings share it, so only the first instance does).</summary>
    public override async ValueTask DisposeAsync()
    {
        try
        {
            await base.DisposeAsync();
        }
        finally
        {
            if (_ownsDatabase)
            {
                await TestDatabase.DropAsync(_servers.Postgres, DatabaseConnectionString);
            }
        }
    }

    /// <summary>A second API instance like <see cref="CreateSibling()"/>, with some settings changed (say, a
    /// database connection string that goes through a proxy).</summary>
    public TrackerApiFactory CreateSibling(IDictionary<string, string?> changes)
    {
        var settings = new Dictionary<string, string?>(_overrides ?? new Dictionary<string, string?>());
        foreach (var (key, value) in changes)
        {
            settings[key] = value;
        }

        return new(_servers, DatabaseConnectionString, JwtSigningKey, settings, ownsDatabase: false);
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Testing");
        builder.UseUrls("http://127.0.0.1:0");
        foreach (var (key, value) in _settings)
        {
            builder.UseSetting(key, value);
        }

        builder.ConfigureLogging(logging => logging.AddProvider(Logs));
        if (_configureServices is { } configure)
        {
            builder.ConfigureTestServices(configure);
        }
    }
}
