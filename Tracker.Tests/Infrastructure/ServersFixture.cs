namespace Tracker.Tests.Infrastructure;

/// <summary>
/// One PostgreSQL and one Redis for every API-level test class in <see cref="RealServers"/>; each
/// <see cref="TrackerApiFactory"/> gets its own database on the server, so classes never see each other's rows.
/// </summary>
public sealed class ServersFixture : IAsyncLifetime
{
    public PostgresTestServer Postgres { get; private set; } = null!;

    public RedisTestServer Redis { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var postgres = PostgresTestServer.StartNewAsync();
        var redis = RedisTestServer.StartNewAsync();
        try
        {
            await Task.WhenAll(postgres, redis);
        }
        catch
        {
            // Whichever did start must not outlive the failure of the other.
            await StopStartedAsync(postgres, redis);
            throw;
        }

        Postgres = postgres.Result;
        Redis = redis.Result;
    }

    public async Task DisposeAsync()
    {
        // Redis is stopped even if stopping PostgreSQL fails.
        try
        {
            await Postgres.DisposeAsync();
        }
        finally
        {
            await Redis.DisposeAsync();
        }
    }

    private static async Task StopStartedAsync(Task<PostgresTestServer> postgres, Task<RedisTestServer> redis)
    {
        try
        {
            if (postgres.IsCompletedSuccessfully)
            {
                await postgres.Result.DisposeAsync();
            }
        }
        finally
        {
            if (redis.IsCompletedSuccessfully)
            {
                await redis.Result.DisposeAsync();
            }
        }
    }
}

[CollectionDefinition(nameof(RealServers))]
public sealed class RealServers : ICollectionFixture<ServersFixture>;
