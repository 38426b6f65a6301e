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
        Postgres = await postgres;
        Redis = await redis;
    }

    public async Task DisposeAsync()
    {
        await Postgres.DisposeAsync();
        await Redis.DisposeAsync();
    }
}

[CollectionDefinition(nameof(RealServers))]
public sealed class RealServers : ICollectionFixture<ServersFixture>;
